"""queue totals: appeals per status and reason, over all appeals and per dataset (appeal_totals), and an
index on each count table's (status, due day), so a queue page's counts read a few hundred rows instead
of a row per day of history (issue 15)

Revision ID: 0013_queue_totals
Revises: 0012_dataset_queue_keys
Create Date: 2026-11-30 11:45:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0013_queue_totals'
down_revision = '0012_dataset_queue_keys'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'appeal_totals',
        sa.Column('dataset', sa.String(length=128), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('appeals', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('dataset', 'status', 'reason', name=op.f('pk_appeal_totals')),
    )
    with op.batch_alter_table('appeal_counts', schema=None) as batch_op:
        batch_op.create_index('ix_appeal_counts_status_due', ['status', 'due_day'], unique=False)
    with op.batch_alter_table('appeal_dataset_counts', schema=None) as batch_op:
        batch_op.create_index('ix_appeal_dataset_counts_status_due', ['dataset', 'status', 'due_day'], unique=False)
    # The totals of the counts already kept (services/queue_counts.py keeps them from now on).
    op.execute("INSERT INTO appeal_totals (dataset, status, reason, appeals) "
               "SELECT '', status, reason, SUM(appeals) FROM appeal_counts GROUP BY status, reason")
    op.execute("INSERT INTO appeal_totals (dataset, status, reason, appeals) "
               "SELECT dataset, status, reason, SUM(appeals) FROM appeal_dataset_counts "
               "GROUP BY dataset, status, reason")


def downgrade() -> None:
    with op.batch_alter_table('appeal_dataset_counts', schema=None) as batch_op:
        batch_op.drop_index('ix_appeal_dataset_counts_status_due')
    with op.batch_alter_table('appeal_counts', schema=None) as batch_op:
        batch_op.drop_index('ix_appeal_counts_status_due')
    op.drop_table('appeal_totals')
