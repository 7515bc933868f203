"""`appeals staff add|list|otp`: staff accounts from the command line (the operator's power)."""

from __future__ import annotations

import json

import click

from appeals.commands._common import bootstrap, read_password_stdin


@click.group("staff")
def staff() -> None:
    """Staff accounts: reviewers, senior reviewers and admins."""


@staff.command("add")
@click.option("--email", required=True, help="The staff member's email; also their login name.")
@click.option("--role", required=True, type=click.Choice(["reviewer", "senior", "admin"]), help="Their role.")
@click.option("--password-stdin", "password_stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (includes totp_secret).")
def add(email: str, role: str, password_stdin: bool, as_json: bool) -> None:
    """Add a staff member and print their TOTP secret and otpauth URI for enrolment."""
    from appeals.services import staff as staff_service
    from appeals.services.audit import Actor
    from appeals.services.errors import Invalid

    if not password_stdin:
        raise click.UsageError("Give the password on standard input with --password-stdin (never as an argument).")
    password = read_password_stdin()
    bootstrap()
    try:
        member = staff_service.create_staff(email, role, password, Actor("operator", None, "command line"))
    except Invalid as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        raise click.ClickException(f"{exc.message} {detail}".strip()) from None
    uri = staff_service.provisioning_uri(member)
    if as_json:
        click.echo(json.dumps({"id": member.id, "email": member.email, "role": member.role,
                               "totp_secret": member.totp_secret, "otpauth_uri": uri}))
        return
    click.echo(f"Added {member.role} {member.email} (id {member.id}).")
    click.echo(f"TOTP secret: {member.totp_secret}")
    click.echo(f"otpauth URI: {uri}")
    click.echo("They enrol at their first login on /review/login (the page shows a QR code).")


@staff.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def list_(as_json: bool) -> None:
    """List staff members (never their secrets)."""
    from sqlalchemy import select

    from appeals import db
    from appeals.models import Staff
    from appeals.services.staff import is_enrolled

    bootstrap()
    for member in db.session.scalars(select(Staff).order_by(Staff.email)):
        row = {"id": member.id, "email": member.email, "role": member.role, "active": member.active,
               "enrolled": is_enrolled(member)}
        click.echo(json.dumps(row) if as_json else
                   f"{member.id:>4}  {member.role:<8}  {'active' if member.active else 'disabled':<8}  {member.email}")


@staff.command("otp")
@click.option("--email", required=True, help="The staff member's email.")
def otp(email: str) -> None:
    """Print the TOTP code the server accepts next (demo and test modes only)."""
    from appeals.services import staff as staff_service
    from appeals.services.errors import ServiceError

    bootstrap()
    try:
        click.echo(staff_service.demo_code(email))
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None


commands = [staff]
