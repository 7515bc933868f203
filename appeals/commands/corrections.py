"""`appeals corrections apply|retry|list|ledger|revoke`: the operator's path to the same correction code as the worker."""

from __future__ import annotations

import json

import click

from appeals.commands._common import bootstrap

OPERATOR = ("operator", None, "command line")


@click.group("corrections")
def corrections() -> None:
    """Corrections of the published datasets."""


@corrections.command("apply")
@click.option("--remove", "remove", multiple=True, metavar="UID", help="Remove this account (repeatable).")
@click.option("--rehash", "rehash", multiple=True, metavar="UID", help="Re-hash this account (repeatable).")
@click.option("--reason", default="", help="Why (required; kept in the audit log, never published).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def apply(remove: tuple[str, ...], rehash: tuple[str, ...], reason: str, as_json: bool) -> None:
    """Remove or re-hash accounts in every dataset now, under the dataset lock, and publish."""
    from appeals.services.audit import Actor
    from workers import jobs

    remove_ids = [uid.strip() for uid in remove]
    rehash_ids = [uid.strip() for uid in rehash]
    if not remove_ids and not rehash_ids:
        raise click.UsageError("Name at least one account with --remove UID or --rehash UID.")
    bad = [uid for uid in remove_ids + rehash_ids if not (uid.isascii() and uid.isdigit())]
    if bad:
        raise click.UsageError(f"User ids are numbers; not: {', '.join(repr(b) for b in bad)}.")
    both = sorted(set(remove_ids) & set(rehash_ids))
    if both:
        raise click.UsageError(f"An account cannot be both removed and re-hashed: {', '.join(both)}.")
    if not reason.strip():
        raise click.UsageError("--reason is required: say why, for the audit log.")
    items = sorted({(uid, "remove") for uid in remove_ids} | {(uid, "rehash") for uid in rehash_ids})
    bootstrap()
    try:
        outcome = jobs.operator_apply([list(i) for i in items], reason.strip(), Actor(*OPERATOR))
    except jobs.OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(outcome))
        return
    for uid in outcome.get("already_standing", []):
        click.echo(f"{uid}: the decision already stands and every current release obeys it.")
    if outcome["run"] is None:
        click.echo("Every decision was already standing and already published; nothing was changed now.")
        return
    if outcome["already_applied"]:
        click.echo(f"Batch {outcome['run']} was already published; nothing was changed now.")
    releases = outcome["releases"]
    if not releases:
        click.echo("The decisions are recorded; no current release needed a change yet. "
                   "Every later import honours them.")
    for name, version in sorted(releases.items()):
        click.echo(f"{name}: published version {version}")
    for uid, why in outcome.get("noop", []):
        click.echo(f"{uid}: {why}")


@corrections.command("retry")
@click.argument("correction_id", type=int)
def retry(correction_id: int) -> None:
    """Send a failed correction back to the queue (the dashboard's retry, for an operator)."""
    from appeals.services import corrections as service
    from appeals.services.audit import Actor
    from appeals.services.errors import ServiceError

    bootstrap()
    try:
        service.retry(correction_id, Actor(*OPERATOR))
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Correction {correction_id} is queued again.")


@corrections.command("list")
@click.option("--status", type=click.Choice(["queued", "running", "done", "failed"]), default=None,
              help="Only corrections in this status.")
def list_(status: str | None) -> None:
    """List corrections with their status, run and releases (JSON lines)."""
    from sqlalchemy import select

    from appeals import db
    from appeals.models import Correction

    bootstrap()
    query = select(Correction).order_by(Correction.id)
    if status:
        query = query.where(Correction.status == status)
    for c in db.session.scalars(query):
        click.echo(json.dumps({"id": c.id, "appeal_id": c.appeal_id, "user_id": c.user_id, "remedy": c.remedy,
                               "status": c.status, "run_id": c.run_id, "releases": c.releases, "error": c.error}))


@corrections.command("ledger")
@click.option("--json", "as_json", is_flag=True, help="Print the ledger as JSON.")
@click.option("--standing", is_flag=True, help="Only decisions that still stand.")
def ledger(as_json: bool, standing: bool) -> None:
    """List the ledger of decisions every later import obeys (newest first)."""
    from appeals.services import corrections as service
    from appeals.services.audit import Actor

    bootstrap()
    rows = service.ledger(Actor(*OPERATOR), include_ended=not standing)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("The ledger is empty.")
    for r in rows:
        by = r["decided_by"]
        who = (f"appeal #{by['appeal_id']}, confirmed by {by['confirmed_by']}" if "appeal_id" in by
               else f"operator {by['operator']}: {by['reason']}")
        ended = f" (revoked {r['revoked_at']} by {r['revoked_by']}: {r['revoke_reason']})" if r["revoked_at"] else ""
        click.echo(f"#{r['id']}\t{r['user_id']}\t{r['remedy']}\tepoch {r['epoch']}\t{r['status']}\t"
                   f"{r['decided_at']}\t{who}{ended}")


@corrections.command("revoke")
@click.argument("user_id")
@click.option("--reason", default="", help="Why (required; kept in the audit log).")
def revoke(user_id: str, reason: str) -> None:
    """End the account's standing decision: later imports publish it by the ordinary rules again.
    Nothing already published changes back."""
    from appeals.services import corrections as service
    from appeals.services.audit import Actor
    from appeals.services.errors import ServiceError

    if not reason.strip():
        raise click.UsageError("--reason is required: say why, for the audit log.")
    bootstrap()
    try:
        decision = service.revoke_decision(user_id, reason, Actor(*OPERATOR))
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Decision #{decision.id} ({decision.remedy} of {decision.user_id}) is revoked; "
               "it no longer binds future imports. Nothing already published changes.")


commands = [corrections]
