"""`appeals corrections apply|retry|list|ledger|revoke`: the operator's path to the same correction code as the worker."""

from __future__ import annotations

import json
import math
import time

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
@click.option("--in-process", is_flag=True,
              help="Apply the batch in this process even when a worker is running (by default a running "
                   "worker is handed the batch and this command waits for it).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="With a worker: stop waiting after this long (the batch goes on). "
                   "Default: as long as a correction may run (APPEALS_CORRECTION_TIMEOUT).")
def apply(remove: tuple[str, ...], rehash: tuple[str, ...], reason: str, as_json: bool, in_process: bool,
          timeout: float | None) -> None:
    """Remove or re-hash accounts in every dataset now, under the dataset lock, and publish.

    When a worker (`appeals worker`, or the one `appeals demo` runs) is running on this installation's
    Redis, the batch is handed to it and this command waits for the result; otherwise, or with
    --in-process, it is applied here. Both run the same code and print the same thing.
    """
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
    items = [list(i) for i in sorted({(uid, "remove") for uid in remove_ids} | {(uid, "rehash") for uid in rehash_ids})]
    outcome = None if in_process else _through_worker(items, reason.strip(), timeout)
    if outcome is None:
        outcome = _in_process(items, reason.strip())
    _report(outcome, as_json)


def _in_process(items: list[list[str]], reason: str) -> dict:
    """`operator_apply` in this process (no worker running, or --in-process)."""
    from appeals.services.audit import Actor
    from workers import jobs

    bootstrap()
    try:
        return jobs.operator_apply(items, reason, Actor(*OPERATOR))
    except jobs.OperatorError as exc:
        raise click.ClickException(str(exc)) from None


# How often the waiting command looks at the job's status between blocking reads of its result: a worker
# that died holding it, or stopped before taking it, is noticed within this.
_WAIT_STEP_SECONDS = 1


def _through_worker(items: list[list[str]], reason: str, timeout: float | None) -> dict | None:
    """Hand the batch to a running worker as an RQ job and wait for its outcome; None when no worker
    runs (the caller applies it in-process then).

    Imports neither SQLAlchemy nor the engine: the start-up of this path is Python, click, redis-py and RQ.
    """
    import redis
    from rq import Retry
    from rq.job import JobStatus
    from rq.worker import Worker

    from config import ConfigError, Settings
    from workers import queues

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None
    connection = _running_redis(settings)
    if connection is None:
        return None
    try:
        queue = queues.corrections_queue(connection)

        def worker_listening() -> bool:
            return any(queues.worker_alive(connection, w.name) for w in Worker.all(queue=queue))

        if not worker_listening():
            return None
        # One retry, which only a worker's death uses (the job returns its errors): RQ's abandoned-job
        # cleanup runs the batch again on a live worker.
        job = queue.enqueue(queues.OPERATOR_JOB, items, reason, list(OPERATOR),
                            job_timeout=settings.correction_timeout, result_ttl=queues.RESULT_TTL,
                            failure_ttl=queues.FAILURE_TTL, retry=Retry(max=1),
                            description=f"operator correction of {', '.join(uid for uid, _ in items)}")
    except redis.RedisError:
        return None  # Redis is not answering: in-process, where the lock gives the clear error
    limit = timeout if timeout is not None else settings.correction_timeout + settings.lock_wait_seconds
    deadline = time.monotonic() + limit
    try:
        while True:
            step = max(1, min(_WAIT_STEP_SECONDS, math.ceil(deadline - time.monotonic())))
            result = job.latest_result(timeout=step)  # a blocking read of RQ's result stream
            if result is not None:
                return _outcome_of(job, result)
            status = job.get_status(refresh=True)
            if status == JobStatus.QUEUED and not worker_listening():
                # The worker stopped before taking it: take the job back (only if it is still in the
                # queue: a worker may be taking it right now) and apply the batch here.
                if connection.lrem(queue.key, 0, job.id):
                    job.delete()
                    return None
            if status == JobStatus.STARTED and not queues.worker_alive(connection, _worker_of(job)):
                raise click.ClickException(
                    f"The worker applying the batch (job {job.id}) stopped. Whatever it had not published is "
                    "applied again by RQ's recovery; running the same command again is safe too (a batch is "
                    f"published once). {_FOLLOW}")
            if time.monotonic() >= deadline:
                raise click.ClickException(f"No result after {limit:g} s; the batch goes on in the worker "
                                           f"(job {job.id}). {_FOLLOW}")
    except redis.RedisError as exc:
        # redis-py has retried already; the batch is the worker's and does not depend on this client.
        raise click.ClickException(f"Lost Redis while waiting ({exc.__class__.__name__}); the batch goes on in "
                                   f"the worker (job {job.id}). {_FOLLOW}") from None
    except KeyboardInterrupt:
        click.echo(f"\nInterrupted; the batch goes on in the worker (job {job.id}). {_FOLLOW}", err=True)
        raise SystemExit(130) from None


def _worker_of(job) -> str | None:
    """The name of the worker that started `job` (read afresh: the enqueued copy predates it)."""
    name = job.connection.hget(job.key, "worker_name")
    return name.decode() if name else None


_FOLLOW = "Follow it with `appeals corrections list --runs`."


def _running_redis(settings):
    """A client of the installation's Redis when it is running, else None (no Redis, no worker).

    The embedded server is never started here: a worker would have started it.
    """
    from workers import connection as conn

    if settings.redis_url:
        return conn.client_for(settings.redis_url)
    socket_path = conn.embedded_socket(settings)
    return conn.client_for(f"unix://{socket_path}") if conn.answers(socket_path) else None


def _outcome_of(job, result) -> dict:
    """The outcome document of a finished job, or the one-line error the in-process path would print."""
    from rq.results import Result

    if result.type == Result.Type.SUCCESSFUL:
        value = result.return_value or {}
        if "error" in value:
            raise click.ClickException(value["error"])
        return value["outcome"]
    lines = (result.exc_string or "").strip().splitlines()
    raise click.ClickException(f"The worker failed the batch (job {job.id}): {lines[-1] if lines else 'no detail'}")


def _report(outcome: dict, as_json: bool) -> None:
    """Print an outcome of `operator_apply` (the same whichever process applied it)."""
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
              help="Only corrections (or runs) in this status.")
@click.option("--runs", is_flag=True,
              help="List correction runs instead, operators' batches included (who, why, releases).")
def list_(status: str | None, runs: bool) -> None:
    """List corrections with their status, run and releases (JSON lines)."""
    from sqlalchemy import select

    from appeals import db
    from appeals.models import Correction, CorrectionRun

    bootstrap()
    if runs:
        query = select(CorrectionRun).order_by(CorrectionRun.created_at, CorrectionRun.id)
        if status:
            query = query.where(CorrectionRun.status == status)
        for r in db.session.scalars(query):
            click.echo(json.dumps({"run": r.id, "status": r.status, "items": r.items, "operator": r.operator,
                                   "reason": r.reason, "releases": r.releases, "error": r.error,
                                   "started_at": r.started_at.isoformat() if r.started_at else None,
                                   "finished_at": r.finished_at.isoformat() if r.finished_at else None}))
        return
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
