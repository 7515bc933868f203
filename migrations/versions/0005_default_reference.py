"""default reason codes and message templates (a data migration; admins edit them afterwards)

Revision ID: 0005_default_reference
Revises: 0002_queue_indexes
Create Date: 2026-11-30 02:00:00

A fresh production install must be able to record a decision: it needs reason codes.
Upgrade adds each default that is missing (by code / by name), so a database where an
admin already made some keeps them. Downgrade removes only defaults nobody touched:
unchanged since they were added, and (reason codes) never used by a decision.
"""

from alembic import op
import sqlalchemy as sa

from appeals.services.reference import DEFAULT_REASON_CODES, DEFAULT_TEMPLATES

revision = "0005_default_reference"
down_revision = "0002_queue_indexes"
branch_labels = None
depends_on = None

reason_codes = sa.table(
    "reason_codes",
    sa.column("id", sa.Integer), sa.column("code", sa.String), sa.column("label", sa.String),
    sa.column("applies_to", sa.String), sa.column("active", sa.Boolean),
)
message_templates = sa.table(
    "message_templates",
    sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("body", sa.Text),
    sa.column("active", sa.Boolean),
)
appeals = sa.table("appeals", sa.column("decision_reason_code", sa.String))


def upgrade() -> None:
    conn = op.get_bind()
    codes = set(conn.scalars(sa.select(reason_codes.c.code)))
    rows = [{"code": c, "label": label, "applies_to": applies, "active": True}
            for c, label, applies in DEFAULT_REASON_CODES if c not in codes]
    if rows:
        op.bulk_insert(reason_codes, rows)
    names = set(conn.scalars(sa.select(message_templates.c.name)))
    rows = [{"name": name, "body": body, "active": True} for name, body in DEFAULT_TEMPLATES if name not in names]
    if rows:
        op.bulk_insert(message_templates, rows)


def downgrade() -> None:
    conn = op.get_bind()
    used = sa.select(appeals.c.decision_reason_code).where(appeals.c.decision_reason_code.is_not(None))
    for code, label, applies in DEFAULT_REASON_CODES:
        conn.execute(reason_codes.delete().where(
            reason_codes.c.code == code, reason_codes.c.label == label, reason_codes.c.applies_to == applies,
            reason_codes.c.active.is_(True), reason_codes.c.code.not_in(used)))
    for name, body in DEFAULT_TEMPLATES:
        conn.execute(message_templates.delete().where(
            message_templates.c.name == name, message_templates.c.body == body,
            message_templates.c.active.is_(True)))
