"""dataset counts: appeals counted per dataset, status, reason, SLA due day and filing day, kept with every
change (the queue's dataset filter); an index on appeals (created_at, id) for the queue over every status;
the live-claims index made covering (the "unassigned" counts read it alone)

Revision ID: 0011_dataset_counts
Revises: 0010_queue_summary
Create Date: 2026-11-30 07:50:00
"""

from collections import Counter
from datetime import date, datetime

from alembic import op
import sqlalchemy as sa


revision = '0011_dataset_counts'
down_revision = '0010_queue_summary'
branch_labels = None
depends_on = None


def upgrade() -> None:
    counts = op.create_table(
        'appeal_dataset_counts',
        sa.Column('dataset', sa.String(length=128), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('due_day', sa.Date(), nullable=False),
        sa.Column('created_day', sa.Date(), nullable=False),
        sa.Column('appeals', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('dataset', 'status', 'reason', 'due_day', 'created_day',
                                name=op.f('pk_appeal_dataset_counts')),
    )
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.create_index('ix_appeals_created_id', ['created_at', 'id'], unique=False)
        batch_op.drop_index('ix_appeals_claim_touched')
        batch_op.create_index('ix_appeals_claim_cover', ['claim_touched_at', 'assigned_to_id', 'status', 'due_at',
                                                         'reason', 'created_at'], unique=False)
    # The counts of the appeals already filed (services/queue_counts.py keeps them from now on).
    appeals = sa.table('appeals', sa.column('id', sa.Integer), sa.column('status', sa.String),
                       sa.column('reason', sa.String), sa.column('due_at', sa.DateTime),
                       sa.column('created_at', sa.DateTime))
    links = sa.table('appeal_datasets', sa.column('appeal_id', sa.Integer), sa.column('dataset', sa.String))

    def day(moment):
        return moment.date() if isinstance(moment, datetime) else date(9999, 12, 31)

    found = Counter()
    for name, status, reason, due_at, created_at in op.get_bind().execute(
            sa.select(links.c.dataset, appeals.c.status, appeals.c.reason, appeals.c.due_at, appeals.c.created_at)
            .join(appeals, appeals.c.id == links.c.appeal_id)):
        found[(name, status or 'filed', reason or '', day(due_at), day(created_at))] += 1
    if found:
        op.bulk_insert(counts, [{'dataset': n, 'status': s, 'reason': r, 'due_day': d, 'created_day': c, 'appeals': k}
                                for (n, s, r, d, c), k in found.items()])


def downgrade() -> None:
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_index('ix_appeals_claim_cover')
        batch_op.create_index('ix_appeals_claim_touched', ['claim_touched_at'], unique=False)
        batch_op.drop_index('ix_appeals_created_id')
    op.drop_table('appeal_dataset_counts')
