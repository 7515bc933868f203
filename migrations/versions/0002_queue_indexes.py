"""queue indexes for footprint sort and dataset filter

Revision ID: 0002_queue_indexes
Revises: 0001_initial
Create Date: 2026-11-28 14:28:53.075124
"""

from alembic import op
import sqlalchemy as sa


revision = '0002_queue_indexes'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('appeal_datasets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeal_datasets_dataset'))
        batch_op.create_index('ix_appeal_datasets_dataset_appeal', ['dataset', 'appeal_id'], unique=False)

    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.create_index('ix_appeals_status_footprint', ['status', 'footprint_size'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_index('ix_appeals_status_footprint')

    with op.batch_alter_table('appeal_datasets', schema=None) as batch_op:
        batch_op.drop_index('ix_appeal_datasets_dataset_appeal')
        batch_op.create_index(batch_op.f('ix_appeal_datasets_dataset'), ['dataset'], unique=False)

