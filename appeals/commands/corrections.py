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


# How often the waiting command looks at the batch between blocking reads of its reply: a worker that died
# holding it, or stopped before taking it, is noticed within this.
_WAIT_STEP_SECONDS = 1
# How long the fast path (workers/wire.py: no redis-py, no RQ) waits for the reply before the command loads
# redis-py and RQ to look at the job as well: a one-account batch comes back well within it.
_FAST_WAIT_SECONDS = 2


def _through_worker(items: list[list[str]], reason: str, timeout: float | None) -> dict | None:
    """Hand the batch to a running worker (workers.handoff) and wait for its outcome; None when no worker
    runs (the caller applies it in-process then).

    Imports neither SQLAlchemy nor the engine, and on its fast path neither redis-py nor RQ: the start-up of
    a handed-off batch is Python, click, the settings and a socket.
    """
    from config import ConfigError, Settings
    from workers import handoff, wire

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None
    url = _redis_url(settings)
    limit = timeout if timeout is not None else settings.correction_timeout + settings.lock_wait_seconds
    deadline = time.monotonic() + limit
    request_id, payload = handoff.new_request(items, reason, list(OPERATOR))
    job_id = handoff.job_id(request_id)
    submitted = False
    try:
        fast = wire.connect(url)
    except wire.WireError:
        return None  # Redis is not answering: in-process, where the lock gives the clear error
    try:
        if fast is not None:
            try:
                submitted = handoff.offer(fast, payload)
                if not submitted:
                    return None
                reply = handoff.wait_reply(fast, request_id, min(_FAST_WAIT_SECONDS, limit))
                if reply is not None:
                    return _outcome_of(job_id, reply)
            except wire.WireError:
                if not submitted:
                    return None
            finally:
                fast.close()
        return _wait_with_rq(url, request_id, payload, submitted, deadline, limit)
    except KeyboardInterrupt:
        if not submitted:
            raise
        click.echo(f"\nInterrupted; the batch goes on in the worker (job {job_id}). {_FOLLOW}", err=True)
        raise SystemExit(130) from None


def _wait_with_rq(url: str, request_id: str, payload: bytes, submitted: bool, deadline: float,
                  limit: float) -> dict | None:
    """The rest of the wait, with redis-py and RQ: the reply, or what became of the request and its job."""
    import redis
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    from workers import handoff, queues
    from workers.connection import client_for

    connection = client_for(url)
    job_id = handoff.job_id(request_id)
    try:
        if not submitted and not handoff.offer(connection, payload):  # a URL with options only redis-py knows
            return None
    except redis.RedisError:
        return None
    lost = 0
    try:
        while True:
            step = max(1, min(_WAIT_STEP_SECONDS, math.ceil(deadline - time.monotonic())))
            reply = handoff.wait_reply(connection, request_id, step)
            if reply is not None:
                return _outcome_of(job_id, reply)
            try:
                job = Job.fetch(job_id, connection=connection)
            except NoSuchJobError:
                job = None
            if job is None:
                # Still a request: waiting in the shared list, or taken by a worker that is making it a job
                # (if that worker died, the next sweep gives it back). Nobody left to take it: apply it here.
                if not handoff.any_worker_alive(connection) and handoff.withdraw(connection, payload):
                    return None
                lost = 0 if handoff.still_listed(connection, payload) else lost + 1
                if lost >= 2:  # twice, so a request moving between the looks is not taken for lost
                    raise click.ClickException("Redis lost the batch before a worker took it (was it restarted?); "
                                               "nothing was applied. Run the command again.")
            else:
                status = job.get_status(refresh=True)
                if status == JobStatus.QUEUED and not handoff.any_worker_alive(connection):
                    # Every worker stopped before taking the job: take it back (only if it is still in the
                    # queue: a worker may be taking it right now) and apply the batch here.
                    if connection.lrem(queues.corrections_queue(connection).key, 0, job.id):
                        job.delete()
                        return None
                if status == JobStatus.STARTED and not queues.worker_alive(connection, _worker_of(job)):
                    raise click.ClickException(
                        f"The worker applying the batch (job {job.id}) stopped. Whatever it had not published is "
                        "applied again by RQ's recovery; running the same command again is safe too (a batch is "
                        f"published once). {_FOLLOW}")
                if status in (JobStatus.FINISHED, JobStatus.FAILED):  # ended, and its reply was not handed over
                    return _outcome_of(job.id, job.latest_result())
            if time.monotonic() >= deadline:
                raise click.ClickException(f"No result after {limit:g} s; the batch goes on in the worker "
                                           f"(job {job_id}). {_FOLLOW}")
    except redis.RedisError as exc:
        # redis-py has retried already; the batch is the worker's and does not depend on this client.
        raise click.ClickException(f"Lost Redis while waiting ({exc.__class__.__name__}); the batch goes on in "
                                   f"the worker (job {job_id}). {_FOLLOW}") from None


def _worker_of(job) -> str | None:
    """The name of the worker that started `job` (read afresh: the enqueued copy predates it)."""
    name = job.connection.hget(job.key, "worker_name")
    return name.decode() if name else None


_FOLLOW = "Follow it with `appeals corrections list --runs`."


def _redis_url(settings) -> str:
    """The installation's Redis URL; the embedded server's socket when none is set (a worker would have
    started it: if it is not running, connecting fails and the batch is applied in-process)."""
    if settings.redis_url:
        return settings.redis_url
    from workers.connection import embedded_socket

    return f"unix://{embedded_socket(settings)}"


def _outcome_of(job_id: str, result) -> dict:
    """The outcome document of a finished batch, or the one-line error the in-process path would print.

    `result` is the job's return value as the reply carries it, or RQ's Result of the job when the reply
    was not handed over (a job that failed: its worker died, twice).
    """
    if not isinstance(result, dict):
        from rq.results import Result

        if result is None or result.type != Result.Type.SUCCESSFUL:
            lines = ((result.exc_string if result is not None else "") or "").strip().splitlines()
            raise click.ClickException(f"The worker failed the batch (job {job_id}): "
                                       f"{lines[-1] if lines else 'no detail'}")
        result = result.return_value or {}
    if "error" in result:
        raise click.ClickException(result["error"])
    return result["outcome"]


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
