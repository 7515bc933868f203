"""queue summary: appeals counted per status, reason and SLA due day, kept with every status change;
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
        sa.Column('appeals', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('status', 'reason', 'due_day', name=op.f('pk_appeal_counts')),
    )
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.create_index('ix_appeals_claim_touched', ['claim_touched_at'], unique=False)
    # The counts of the appeals already filed (services/queue_counts.py keeps them from now on).
    appeals = sa.table('appeals', sa.column('status', sa.String), sa.column('reason', sa.String),
                       sa.column('due_at', sa.DateTime))
    found = Counter()
    for status, reason, due_at in op.get_bind().execute(sa.select(appeals.c.status, appeals.c.reason, appeals.c.due_at)):
        day = due_at.date() if isinstance(due_at, datetime) else date(9999, 12, 31)
        found[(status or 'filed', reason or '', day)] += 1
    if found:
        op.bulk_insert(counts, [{'status': s, 'reason': r, 'due_day': d, 'appeals': n} for (s, r, d), n in found.items()])


def downgrade() -> None:
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_index('ix_appeals_claim_touched')
    op.drop_table('appeal_counts')
