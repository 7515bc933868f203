"""evidence uploads: files an owner attaches to an appeal or a reply

Revision ID: 0006_evidence_uploads
Revises: 0002_queue_indexes
"""

from alembic import op
import sqlalchemy as sa


revision = '0006_evidence_uploads'
down_revision = '0005_default_reference'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'appeal_attachments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('appeal_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('media_type', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['appeal_id'], ['appeals.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['message_id'], ['appeal_messages.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('appeal_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeal_attachments_appeal_id'), ['appeal_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('appeal_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeal_attachments_appeal_id'))
    op.drop_table('appeal_attachments')
