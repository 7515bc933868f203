"""standing decisions: the ledger of confirmed remedies that every later import obeys

Revision ID: 0003_standing_decisions
Revises: 0004_security
Create Date: 2026-11-30 01:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003_standing_decisions'
down_revision = '0004_security'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'standing_decisions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('remedy', sa.String(length=16), nullable=False),
        sa.Column('epoch', sa.Integer(), nullable=False),
        sa.Column('screen_names', sa.JSON(), nullable=True),
        sa.Column('run_id', sa.String(length=64), nullable=True),
        sa.Column('appeal_id', sa.Integer(), nullable=True),
        sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
        sa.Column('operator', sa.String(length=255), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=False),
        sa.Column('superseded_by_id', sa.Integer(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_by', sa.String(length=255), nullable=True),
        sa.Column('revoke_reason', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['appeal_id'], ['appeals.id'], name=op.f('fk_standing_decisions_appeal_id_appeals')),
        sa.ForeignKeyConstraint(['confirmed_by_id'], ['staff.id'], name=op.f('fk_standing_decisions_confirmed_by_id_staff')),
        sa.ForeignKeyConstraint(['superseded_by_id'], ['standing_decisions.id'],
                                name=op.f('fk_standing_decisions_superseded_by_id_standing_decisions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_standing_decisions')),
    )
    with op.batch_alter_table('standing_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_standing_decisions_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('correction_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('operator', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('correction_runs', schema=None) as batch_op:
        batch_op.drop_column('reason')
        batch_op.drop_column('operator')
    with op.batch_alter_table('standing_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_standing_decisions_user_id'))
    op.drop_table('standing_decisions')
