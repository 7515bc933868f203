"""`appeals accounts ...`: the platform account directory's stand-in (create accounts owners log in with)."""

from __future__ import annotations

import json

import click

from appeals.commands._common import bootstrap, read_password_stdin


@click.group("accounts")
def accounts() -> None:
    """Platform accounts (the appellants)."""


@accounts.command("add")
@click.option("--user-id", required=True, help="The platform's user id, as in the datasets' userid column.")
@click.option("--screen-name", required=True, help="1 to 15 letters, digits or underscores.")
@click.option("--email", default=None, help="Optional; the owner can log in with it.")
@click.option("--followers", type=int, default=0, show_default=True, help="Follower count (0 or more).")
@click.option("--suspended", is_flag=True, help="The account is suspended on the platform (it can still log in).")
@click.option("--password-stdin", "password_stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--json", "as_json", is_flag=True, help="Print the created account as JSON.")
def add(user_id, screen_name, email, followers, suspended, password_stdin, as_json) -> None:
    """Create a platform account; the password is read from standard input, never from the command line."""
    from appeals import db
    from appeals.services import accounts as service
    from appeals.services.audit import Actor
    from appeals.services.errors import ServiceError

    if not password_stdin:
        raise click.UsageError("Give the password on standard input with --password-stdin.")
    password = read_password_stdin()
    bootstrap()
    try:
        account = service.create_account(
            Actor("operator", None, "cli"),
            user_id=user_id, screen_name=screen_name, password=password,
            email=email, followers=followers, suspended=suspended,
        )
    except ServiceError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    described = {"id": account.id, **service.describe(account)}
    db.session.remove()
    if as_json:
        click.echo(json.dumps(described))
    else:
        state = "suspended" if account.suspended else "active"
        click.echo(
            f"Created account @{described['screen_name']} (user id {described['user_id']}, {state}, "
            f"{described['followers']} followers, email {described['email'] or 'none'}); "
            f"it can log in at /login."
        )


commands = [accounts]
