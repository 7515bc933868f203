"""dataset queue keys: each appeal_datasets row carries its appeal's status, filing time, due date and
footprint, with an index per sort, so the queue's page for one dataset walks an index (issue 15)

Revision ID: 0012_dataset_queue_keys
Revises: 0011_dataset_counts
Create Date: 2026-11-30 11:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0012_dataset_queue_keys'
down_revision = '0011_dataset_counts'
branch_labels = None
depends_on = None

COPIES = (('appeal_status', 'status', sa.String(length=32)), ('appeal_created_at', 'created_at', sa.DateTime()),
          ('appeal_due_at', 'due_at', sa.DateTime()), ('appeal_footprint', 'footprint_size', sa.Integer()))
INDEXES = (('ix_appeal_datasets_queue_created', 'appeal_created_at'),
           ('ix_appeal_datasets_queue_due', 'appeal_due_at'),
           ('ix_appeal_datasets_queue_footprint', 'appeal_footprint'))


def upgrade() -> None:
    with op.batch_alter_table('appeal_datasets', schema=None) as batch_op:
        for name, _source, type_ in COPIES:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    # The rows already there take their appeal's values (services/queue_counts.py keeps them from now on).
    appeals = sa.table('appeals', sa.column('id', sa.Integer), *[sa.column(source) for _n, source, _t in COPIES])
    links = sa.table('appeal_datasets', sa.column('appeal_id', sa.Integer), *[sa.column(n) for n, _s, _t in COPIES])
    op.execute(links.update().values({
        name: sa.select(appeals.c[source]).where(appeals.c.id == links.c.appeal_id).scalar_subquery()
        for name, source, _type in COPIES}))
    with op.batch_alter_table('appeal_datasets', schema=None) as batch_op:
        for name, _source, type_ in COPIES:
            batch_op.alter_column(name, existing_type=type_, nullable=False)
        for index, column in INDEXES:
            batch_op.create_index(index, ['dataset', 'appeal_status', column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('appeal_datasets', schema=None) as batch_op:
        for index, _column in INDEXES:
            batch_op.drop_index(index)
        for name, _source, _type in COPIES:
            batch_op.drop_column(name)
