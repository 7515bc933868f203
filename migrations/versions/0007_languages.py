"""languages: the owner's stored language, the language an appeal was filed in and a download was asked in, translated template bodies

Revision ID: 0007_languages
Revises: 0006_evidence_uploads
Create Date: 2026-11-30 01:40:00
"""

from alembic import op
import sqlalchemy as sa

from appeals.services.reference import DEFAULT_TEMPLATE_TRANSLATIONS, DEFAULT_TEMPLATES


revision = '0007_languages'
down_revision = '0006_evidence_uploads'  # chained after main's 0006 when merging main
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))

    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))

    with op.batch_alter_table('download_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))

    op.create_table(
        'message_template_bodies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('template_id', sa.Integer(), nullable=False),
        sa.Column('language', sa.String(length=16), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['template_id'], ['message_templates.id'],
                                name=op.f('fk_message_template_bodies_template_id_message_templates')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_message_template_bodies')),
        sa.UniqueConstraint('template_id', 'language', name='uq_message_template_bodies_template_language'),
    )

    # The default templates (0005) get their bodies in the owners' languages, unless an admin changed the English.
    conn = op.get_bind()
    templates = sa.table("message_templates", sa.column("id", sa.Integer), sa.column("name", sa.String),
                         sa.column("body", sa.Text))
    bodies = sa.table("message_template_bodies", sa.column("template_id", sa.Integer),
                      sa.column("language", sa.String), sa.column("body", sa.Text))
    defaults = dict(DEFAULT_TEMPLATES)
    rows = []
    for template_id, name, body in conn.execute(sa.select(templates.c.id, templates.c.name, templates.c.body)):
        if defaults.get(name) == body:
            rows += [{"template_id": template_id, "language": code, "body": text}
                     for code, text in DEFAULT_TEMPLATE_TRANSLATIONS.get(name, {}).items()]
    if rows:
        op.bulk_insert(bodies, rows)


def downgrade() -> None:
    op.drop_table('message_template_bodies')

    with op.batch_alter_table('download_requests', schema=None) as batch_op:
        batch_op.drop_column('language')

    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_column('language')

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('language')
