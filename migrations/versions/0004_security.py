"""security (issue 13): revocable sessions, staff invitations, kept escalation, proven download addresses

Revision ID: 0004_security
Revises: 0009_outbox_delivery (chained after main's head; first written on 0002_queue_indexes)
"""

from alembic import op
import sqlalchemy as sa


revision = "0004_security"
down_revision = "0009_outbox_delivery"  # chained after main's head when merging main (was 0002_queue_indexes)
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("accounts", "staff", "researchers"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enrolled_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("senior_only", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("download_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proven", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "staff_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["invited_by_id"], ["staff.id"], name=op.f("fk_staff_invitations_invited_by_id_staff")),
        sa.ForeignKeyConstraint(["confirmed_by_id"], ["staff.id"],
                                name=op.f("fk_staff_invitations_confirmed_by_id_staff")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_staff_invitations_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_invitations_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("staff_invitations")
    with op.batch_alter_table("download_log", schema=None) as batch_op:
        batch_op.drop_column("proven")
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_column("senior_only")
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_column("enrolled_at")
    for table in ("researchers", "staff", "accounts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("session_generation")
