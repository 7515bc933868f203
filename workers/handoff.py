"""The operator's hand-off: how `appeals corrections apply` gives its batch to a running worker, in one place.

The command pushes a request (a JSON document with a fresh id) onto a Redis list and waits for the reply
under that id. Each worker runs an intake thread that moves one request at a time from the list into a
list of its own (BLMOVE, so no two workers take one request), enqueues it as the RQ job
`operator-<id>`, and only then drops it from its own list. The job applies the batch and writes its
return value as the reply.

So a request is always somewhere: the shared list, one worker's intake, or RQ (a job of that id, which
RQ keeps for a day after it ends); it is in both of the last two only between the enqueue and the drop.
Enqueuing is refused while a job of that id exists, so a request taken twice runs once. A worker that
dies holding a request leaves it in its intake: every sweep gives the intakes of workers whose heartbeat
lapsed back to the shared list. A worker that dies running the job is RQ's to retry, as before.

An intake names its worker in a set at every turn (so a Redis that restarted empty learns it back), and
the command asks whether any worker named there has a current heartbeat: two round trips, without RQ.
Every function here takes either a redis-py client or a `workers.wire.Wire`: the command's fast path
loads neither redis-py nor RQ (workers/wire.py).
"""

from __future__ import annotations

import json
import uuid

HEARTBEAT_PREFIX = "appeals:worker-alive:"  # + worker name: exists while the worker is alive (queues.beat)
WORKERS_KEY = "appeals:operator:workers"  # names of workers whose intake runs (dead ones pruned by the sweep)
REQUESTS_KEY = "appeals:operator:requests"
_REPLY_PREFIX = "appeals:operator:reply:"  # + request id
REPLY_TTL = 24 * 3600  # as long as RQ keeps the job's own result


class BadRequest(ValueError):
    """A document on the requests list that is not a request (never sent by `appeals`)."""


def intake_key(worker: str) -> str:
    """The list of requests `worker` has taken and not yet made jobs of."""
    return f"appeals:operator:intake:{worker}"


def job_id(request_id: str) -> str:
    """The RQ job id of a request (deterministic: enqueuing a request twice gives one job)."""
    return f"operator-{request_id}"


def new_request(items: list[list[str]], reason: str, actor: list) -> tuple[str, bytes]:
    """(id, document) of a request for this batch: [[user id, remedy], ...], the reason, the actor."""
    request_id = uuid.uuid4().hex
    return request_id, json.dumps({"id": request_id, "items": items, "reason": reason, "actor": actor}).encode()


def parse_request(payload: bytes) -> dict:
    """The request in `payload`, its shape checked (the job validates the batch itself, as in-process)."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("not JSON") from None
    if not (isinstance(doc, dict) and isinstance(doc.get("id"), str) and doc["id"].isalnum()
            and isinstance(doc.get("items"), list) and isinstance(doc.get("reason"), str)
            and isinstance(doc.get("actor"), list) and len(doc["actor"]) == 3):
        raise BadRequest("not a request document")
    return doc


# -- the command's side ------------------------------------------------------------------------------

def any_worker_alive(client) -> bool:
    """Whether some worker with an intake has a current heartbeat (so a request will be taken)."""
    names = client.smembers(WORKERS_KEY)
    return bool(names) and client.exists(*(HEARTBEAT_PREFIX + _text(n) for n in names)) > 0


def offer(client, payload: bytes) -> bool:
    """Put a request at the end of the shared list if a worker is alive to take it; whether it was put."""
    if not any_worker_alive(client):
        return False
    client.rpush(REQUESTS_KEY, payload)
    return True


def withdraw(client, payload: bytes) -> bool:
    """Take a request back if no worker has taken it yet; True when it was withdrawn."""
    return client.lrem(REQUESTS_KEY, 1, payload) == 1


def wait_reply(client, request_id: str, timeout: float) -> dict | None:
    """The job's return value for this request, waiting up to `timeout` seconds; None if there is none yet."""
    got = client.blpop([_REPLY_PREFIX + request_id], timeout=timeout)
    return None if got is None else json.loads(got[1])


def still_listed(client, payload: bytes) -> bool:
    """Whether a request that is not an RQ job yet is in the shared list or in a worker's intake.

    Looked at in the order requests move, so one moving on between the looks is still found.
    """
    lists = [REQUESTS_KEY] + [intake_key(_text(name)) for name in client.smembers(WORKERS_KEY)]
    return any(client.lpos(key, payload) is not None for key in lists)


# -- the worker's side (redis-py) ---------------------------------------------------------------------

def take(connection, worker: str, timeout: float) -> bytes | None:
    """Move the oldest request into this worker's intake, waiting up to `timeout` seconds for one."""
    connection.sadd(WORKERS_KEY, worker)
    return connection.blmove(REQUESTS_KEY, intake_key(worker), timeout, "LEFT", "RIGHT")


def taken(connection, worker: str, payload: bytes) -> None:
    """Drop a request from this worker's intake once its job is enqueued (or refused as a duplicate)."""
    connection.lrem(intake_key(worker), 1, payload)


def give_back(connection, worker: str) -> int:
    """Return whatever this worker's intake holds to the front of the shared list; how many requests."""
    moved = 0
    while connection.lmove(intake_key(worker), REQUESTS_KEY, "RIGHT", "LEFT") is not None:
        moved += 1
    return moved


def leave(connection, worker: str) -> int:
    """A stopping (or dead) worker: no longer counted by the command, and its intake given back; how many
    requests went back."""
    connection.srem(WORKERS_KEY, worker)
    return give_back(connection, worker)


def send_reply(connection, request_id: str, value: dict) -> None:
    """Hand the job's return value to the waiting command (kept as long as RQ keeps the result)."""
    key = _REPLY_PREFIX + request_id
    with connection.pipeline() as pipe:
        pipe.rpush(key, json.dumps(value))
        pipe.expire(key, REPLY_TTL)
        pipe.execute()


def recover(connection, alive) -> int:
    """Give the intakes of dead workers (`alive(name)` false) back to the shared list and forget those
    workers; how many requests went back."""
    names = (_text(raw) for raw in connection.smembers(WORKERS_KEY))
    return sum(leave(connection, name) for name in names if not alive(name))


def _text(name) -> str:
    return name.decode() if isinstance(name, bytes) else name
