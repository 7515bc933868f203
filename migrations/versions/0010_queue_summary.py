"""queue summary: appeals counted per status, reason, SLA due day and filing day, kept with every change;
an index on claim_touched_at for the live claims

Revision ID: 0010_queue_summary
Revises: 0003_standing_decisions
Create Date: 2026-11-30 05:05:00
"""

from collections import Counter
from datetime import date, datetime

from alembic import op
import sqlalchemy as sa


revision = '0010_queue_summary'
down_revision = '0003_standing_decisions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    counts = op.create_table(
        'appeal_counts',
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('due_day', sa.Date(), nullable=False),
        sa.Column('created_day', sa.Date(), nullable=False),
        sa.Column('appeals', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('status', 'reason', 'due_day', 'created_day', name=op.f('pk_appeal_counts')),
    )
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.create_index('ix_appeals_claim_touched', ['claim_touched_at'], unique=False)
    # The counts of the appeals already filed (services/queue_counts.py keeps them from now on).
    appeals = sa.table('appeals', sa.column('status', sa.String), sa.column('reason', sa.String),
                       sa.column('due_at', sa.DateTime), sa.column('created_at', sa.DateTime))

    def day(moment):
        return moment.date() if isinstance(moment, datetime) else date(9999, 12, 31)

    found = Counter()
    for status, reason, due_at, created_at in op.get_bind().execute(
            sa.select(appeals.c.status, appeals.c.reason, appeals.c.due_at, appeals.c.created_at)):
        found[(status or 'filed', reason or '', day(due_at), day(created_at))] += 1
    if found:
        op.bulk_insert(counts, [{'status': s, 'reason': r, 'due_day': d, 'created_day': c, 'appeals': n}
                                for (s, r, d, c), n in found.items()])


def downgrade() -> None:
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_index('ix_appeals_claim_touched')
    op.drop_table('appeal_counts')
