"""The operator's hand-off (workers/handoff.py) and the small client its fast path uses (workers/wire.py),
against a real Redis: the session's own (embedded, on a unix socket) or APPEALS_REDIS_URL (TCP, a database
number in the path) when CI runs the suite on the machine's services."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest
import redis
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from workers import handoff, queues, wire

FAST_TESTS = hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def r(settings):
    """redis-py on the test's (flushed) Redis: the reference the small client is held to."""
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    client.close()


@pytest.fixture
def w(settings):
    client = wire.connect(settings.redis_url)
    assert client is not None
    yield client
    client.close()


# -- the client ---------------------------------------------------------------------------------------

@FAST_TESTS
@given(values=st.lists(st.binary(max_size=300), min_size=1, max_size=8))
def test_what_the_client_writes_redis_py_reads_back_byte_for_byte(r, w, values):
    r.delete("k")
    assert w.rpush("k", *values) == len(values)
    assert r.lrange("k", 0, -1) == values
    assert w.call("LRANGE", "k", 0, -1) == values
    assert w.lrem("k", 1, values[0]) == 1
    assert r.lrange("k", 0, -1) == values[1:]


def test_replies_have_redis_py_types(r, w):
    r.sadd("s", b"a", b"b")
    assert w.smembers("s") == {b"a", b"b"} == r.smembers("s")
    assert w.smembers("absent") == set()
    r.set("x", "1")
    assert w.exists("x", "s", "absent") == 2
    assert w.call("GET", "absent") is None
    r.rpush("q", b"first")
    assert w.blpop(["q"], timeout=1) == (b"q", b"first")


def test_a_blocking_read_waits_its_timeout_and_no_longer(w):
    start = time.monotonic()
    assert w.blpop(["nothing-here"], timeout=0.3) is None
    assert 0.25 <= time.monotonic() - start < 2


def test_an_error_reply_is_raised_and_the_connection_stays_usable(r, w):
    r.set("text", "v")
    with pytest.raises(wire.WireError, match="WRONGTYPE"):
        w.rpush("text", b"x")
    assert w.call("GET", "text") == b"v"


def test_a_connection_the_server_drops_is_an_error_not_a_hang(r, w):
    r.execute_command("CLIENT", "KILL", "ID", w.call("CLIENT", "ID"))
    with pytest.raises(wire.WireError):
        w.call("PING")


def test_the_database_number_of_the_url_is_read_as_redis_py_reads_it(settings):
    parts = urlsplit(settings.redis_url)
    if parts.scheme == "unix":
        others = [f"unix://{parts.path}?db=15"]
    else:  # the path's number, and the query's, which redis-py puts first
        others = [f"{parts.scheme}://{parts.netloc}/15", f"{parts.scheme}://{parts.netloc}/14?db=15"]
    for other in others:
        key = f"appeals-test-wire-{time.time_ns()}"
        client = wire.connect(other)
        try:
            client.call("SET", key, "there", "EX", 60)
            assert redis.Redis.from_url(other).get(key) == b"there", other
            assert redis.Redis.from_url(settings.redis_url).get(key) is None
        finally:
            redis.Redis.from_url(other).delete(key)
            client.close()


@pytest.mark.parametrize("url", [
    "redis://localhost:6379/0?socket_timeout=5",  # an option only redis-py knows
    "redis+sentinel://localhost:26379/mymaster",
    "unix:///tmp/x.sock?db=1&health_check_interval=2",
    "redis://localhost:6379/notanumber",
])
def test_urls_with_what_it_does_not_know_are_left_to_redis_py(url):
    assert wire.connect(url) is None


def test_an_unreachable_server_or_a_refused_password_is_an_error(tmp_path, settings):
    with pytest.raises(wire.WireError, match="cannot reach"):
        wire.connect(f"unix://{tmp_path}/nobody.sock")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens once it is closed
    with pytest.raises(wire.WireError, match="cannot reach"):
        wire.connect(f"redis://127.0.0.1:{port}/0", timeout=1)
    parts = urlsplit(settings.redis_url)
    wrong = f"unix://:wrong@{parts.path}" if parts.scheme == "unix" else \
        f"{parts.scheme}://:wrong@{parts.hostname}:{parts.port or 6379}{parts.path}"
    with pytest.raises(wire.WireError):  # the test servers have no password: AUTH is refused either way
        wire.connect(wrong)


# -- the protocol ---------------------------------------------------------------------------------------

@given(items=st.lists(st.tuples(st.from_regex(r"\A[0-9]{1,19}\Z"), st.sampled_from(["remove", "rehash"])),
                      max_size=5).map(lambda xs: [list(x) for x in xs]),
       reason=st.text(max_size=50))
def test_a_request_reads_back_as_sent(items, reason):
    request_id, payload = handoff.new_request(items, reason, ["operator", None, "command line"])
    doc = handoff.parse_request(payload)
    assert doc == {"id": request_id, "items": items, "reason": reason, "actor": ["operator", None, "command line"]}


@pytest.mark.parametrize("payload", [b"", b"not json", b"[]", b'{"id": "x"}', b'{"id": "../x", "items": [], '
                                     b'"reason": "", "actor": [1, 2, 3]}', b'\xff\xfe'])
def test_anything_else_on_the_list_is_refused(payload):
    with pytest.raises(handoff.BadRequest):
        handoff.parse_request(payload)


def test_no_worker_alive_without_an_intake_and_a_current_heartbeat(r, w):
    _, payload = handoff.new_request([["1", "remove"]], "r", ["operator", None, "x"])
    assert not handoff.any_worker_alive(w)
    r.sadd(handoff.WORKERS_KEY, "quiet")  # named by an intake, but its heartbeat lapsed
    assert not handoff.any_worker_alive(w) and not handoff.any_worker_alive(r)
    assert not handoff.offer(w, payload) and r.llen(handoff.REQUESTS_KEY) == 0  # nobody to take it
    queues.beat(r, "quiet", 30)
    assert handoff.any_worker_alive(w) and handoff.any_worker_alive(r)
    assert handoff.offer(w, payload) and r.lrange(handoff.REQUESTS_KEY, 0, -1) == [payload]


class HandOff(RuleBasedStateMachine):
    """Requests move between the shared list, workers' intakes and jobs while workers die (or only seem to)
    and sweeps run, with the functions the command, the intake and the sweep use. Whatever happens, no
    request is lost, none is twice in the lists, none becomes two jobs, and a sweep leaves no dead
    worker counted or holding requests. (A job is modelled by the key RQ's `unique` enqueue checks: set only if absent.)"""

    def __init__(self):
        super().__init__()
        self.r = redis.Redis.from_url(self.url)
        self.r.flushdb()
        self.sent: dict[bytes, str] = {}  # payload -> request id
        self.jobs_made = 0

    requests = Bundle("requests")

    @rule(target=requests)
    def submit(self):
        request_id, payload = handoff.new_request([["1", "remove"]], "r", ["operator", None, "x"])
        # As `handoff.offer` puts it once a worker looked alive (which it may no longer be).
        self.r.rpush(handoff.REQUESTS_KEY, payload)
        self.sent[payload] = request_id
        return payload

    @rule(worker=st.sampled_from(["w1", "w2"]))
    def beat(self, worker):
        queues.beat(self.r, worker, 60)

    @rule(worker=st.sampled_from(["w1", "w2"]))
    def die(self, worker):
        self.r.delete(handoff.HEARTBEAT_PREFIX + worker)

    @rule(worker=st.sampled_from(["w1", "w2"]), crash=st.sampled_from(["after take", "after enqueue", None]))
    def intake_turn(self, worker, crash):
        """One turn of `workers.runner._intake_forever`, cut short by the worker's death at `crash`."""
        payload = handoff.take(self.r, worker, timeout=0.01)
        if payload is None or crash == "after take":
            return
        request = handoff.parse_request(payload)
        if self.r.set(handoff.job_id(request["id"]), "job", nx=True):
            self.jobs_made += 1
        if crash is None:
            handoff.taken(self.r, worker, payload)
            assert self.r.lpos(handoff.intake_key(worker), payload) is None

    @rule()
    def sweep(self):
        handoff.recover(self.r, lambda name: queues.worker_alive(self.r, name))
        for name in ("w1", "w2"):
            if queues.worker_alive(self.r, name):
                continue
            assert self.r.llen(handoff.intake_key(name)) == 0, "a dead worker's intake was not given back"
            assert not self.r.sismember(handoff.WORKERS_KEY, name), "a dead worker is still counted"

    @rule(payload=consumes(requests))
    def withdraw(self, payload):
        """The waiting command, with no worker left: it takes back a request that is not a job yet
        (appeals/commands/corrections.py looks for the job first; one that exists is RQ's to run)."""
        if self.r.exists(handoff.job_id(self.sent[payload])):
            return
        was_waiting = self.r.lpos(handoff.REQUESTS_KEY, payload) is not None
        assert handoff.withdraw(self.r, payload) == was_waiting
        if was_waiting:
            del self.sent[payload]

    @invariant()
    def no_request_is_lost_doubled_or_run_twice(self):
        listed = self.r.lrange(handoff.REQUESTS_KEY, 0, -1)
        listed += [p for name in ("w1", "w2") for p in self.r.lrange(handoff.intake_key(name), 0, -1)]
        jobs = {p for p, rid in self.sent.items() if self.r.exists(handoff.job_id(rid))}
        assert len(listed) == len(set(listed)), "a request is twice in the lists"
        assert set(listed) | jobs == set(self.sent), "a request was lost"
        assert self.jobs_made == len(jobs)

    def teardown(self):
        self.r.close()


def test_the_hand_off_loses_and_duplicates_nothing(settings):
    HandOff.url = settings.redis_url
    machine = HandOff.TestCase
    machine.settings = hsettings(max_examples=40, stateful_step_count=25, deadline=None,
                                 suppress_health_check=[HealthCheck.function_scoped_fixture])
    machine().runTest()
