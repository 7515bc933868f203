"""outbox delivery by the worker: hold time, merge key, claim

Revision ID: 0009_outbox_delivery
Revises: 0007_languages
Create Date: 2026-11-30 01:55:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0009_outbox_delivery'
down_revision = '0007_languages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_before', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('merge_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_merge_key'), ['merge_key'], unique=False)
        batch_op.create_index('ix_outbox_status_not_before', ['status', 'not_before'], unique=False)


def downgrade() -> None:
    # Claimed but unsent messages go back to the queue the older code reads.
    op.execute("UPDATE outbox SET status = 'pending' WHERE status = 'sending'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_not_before')
        batch_op.drop_index(batch_op.f('ix_outbox_merge_key'))
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('merge_key')
        batch_op.drop_column('not_before')
