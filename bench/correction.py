"""Benchmark of a one-account correction: engine vs a naive full rewrite vs `cp` of the touched files.

    python bench/correction.py [--size-gb 1.0] [--workdir /tmp/bench_correction] [--json]

Builds a synthetic corpus (workers.engine.synth, then Engine.import_dataset) of at
least --size-gb of master CSV over several datasets; the corrected account's rows
(its own and those referring to it) are in ONE dataset only. Then, in one run:

(a) times Engine.apply(batch, [(uid, "remove")]) for two accounts, "typical"
    (median rows) and "quiet" (fewest files), each run on a fresh copy of the
    store so the very same correction is repeated (median of --repeats);
(b) times a naive peer that parses and rewrites EVERY file of both variants
    with the csv module, dropping the account's rows (it does even less than the
    engine: no reference rewriting, no verification, no fsync);
(c) times `cp` of just the files the engine rewrote (found by comparing the new
    manifest's sha256 with the parent's): the floor (median of --repeats);
then imports as much untouched data again and re-times (a) on the doubled
corpus, alternating base and doubled runs so background load hits both alike.
Import and verification throughputs are measured on the way. Never run as a test.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

# Runnable as a script from a checkout without installing. The script's own
# directory is dropped from the path: sibling benchmarks (bench/review_queue.py) would
# otherwise shadow standard-library modules of the same name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from workers.engine.synth import generate  # noqa: E402

HASH_KEY = b"bench-correction-key-0123456789ab"
KEY_ID = "bench-1"
csv.field_size_limit(64 * 1024 * 1024)


def log(msg: str) -> None:
    """Progress line on stderr (stdout is kept for the table or the JSON)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine_info(workdir: Path) -> dict:
    """CPU count and model, RAM, Python, OS and free disk of the machine the figures come from."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    du = shutil.disk_usage(workdir)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "ram_bytes": ram,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "disk_free_bytes": du.free,
    }


class Measure:
    """Wall time (perf_counter) and CPU time (self + waited children) of a block."""

    def __enter__(self):
        self._cpu0 = self._cpu()
        self._ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self._gc0 = [g["collections"] for g in gc.get_stats()]
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._t0
        self.cpu = self._cpu() - self._cpu0
        ru = resource.getrusage(resource.RUSAGE_SELF)
        # Where an outlier's time went: kernel time, page faults, garbage collections per generation.
        self.sys = ru.ru_stime - self._ru0.ru_stime
        self.minor_faults = ru.ru_minflt - self._ru0.ru_minflt
        self.major_faults = ru.ru_majflt - self._ru0.ru_majflt
        self.blocks_read = ru.ru_inblock - self._ru0.ru_inblock
        self.gc_collections = [g["collections"] - g0 for g, g0 in zip(gc.get_stats(), self._gc0)]
        return False

    @staticmethod
    def _cpu() -> float:
        s = resource.getrusage(resource.RUSAGE_SELF)
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def engine_source_digest() -> str:
    """sha256 over workers/engine/*.py, to tie figures to the engine code they measured (no commits yet)."""
    import hashlib
    h = hashlib.sha256()
    for p in sorted((Path(__file__).resolve().parents[1] / "workers" / "engine").glob("*.py")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def mb(n: float) -> float:
    """Bytes to MB (10**6)."""
    return n / 1e6


def per_core(nbytes: int, wall: float, cpu: float) -> float:
    """MB/s per core: bytes over the larger of wall and CPU time (a parallel engine is not flattered)."""
    return mb(nbytes) / max(wall, cpu, 1e-9)


def dir_bytes(files) -> int:
    return sum(Path(p).stat().st_size for p in files)


# ---------------------------------------------------------------- corpus

def calibrate_bytes_per_tweet(tmp: Path, seed: int) -> float:
    """CSV bytes per tweet of the generator (users files included), from a small pilot."""
    res = generate(tmp, 2, 6000, seed, media=False)
    total = sum(dir_bytes(d.files) for d in res)
    shutil.rmtree(tmp)
    return total / 6000


def csv_bytes(ds) -> int:
    return dir_bytes(p for p in ds.files if p.suffix == ".csv")


def _scan_touched(touched) -> tuple[Counter, Counter, dict]:
    """Per user id of the touched dataset: authored rows, referring rows, tweet parts it appears in."""
    authored: Counter = Counter()
    referring: Counter = Counter()
    parts: dict[str, set] = {}
    tweet_files = [p for p in touched.files if "_tweets_csv_unhashed" in p.name]
    for k, p in enumerate(tweet_files):
        with open(p, encoding="utf-8", newline="") as f:
            r = csv.reader(f)
            header = next(r)
            ui, ru, rt = header.index("userid"), header.index("in_reply_to_userid"), header.index("retweet_userid")
            mi = header.index("user_mentions")
            for row in r:
                authored[row[ui]] += 1
                parts.setdefault(row[ui], set()).add(k)
                refs = {row[ru], row[rt], *re.findall(r"\d+", row[mi])} - {""}
                for x in refs:
                    referring[x] += 1
                    parts.setdefault(x, set()).add(k)
    return authored, referring, parts


def pick_accounts(touched, others: list) -> dict[str, dict]:
    """Two accounts of `touched` that nothing outside it refers to: "typical" and "quiet".

    Candidates are outside the dataset's top 5% by followers (synth lets other
    datasets refer only to those) and have at least one tweet. "typical" has the
    median number of rows (authored + referring); "quiet" touches the fewest
    tweet files (the engine's best case). Both are checked with grep over every
    other dataset's files: no whole id, no @handle, no equal screen name.
    """
    users = list(csv.DictReader(open(touched.dir / f"{touched.name}_users_csv_unhashed.csv",
                                     encoding="utf-8", newline="")))
    authored, referring, parts = _scan_touched(touched)
    ranked = sorted(users, key=lambda u: (-int(u["follower_count"]), u["userid"]))
    prominent = {u["userid"] for u in ranked[: max(1, len(users) // 20)]}
    cands = [u for u in users if u["userid"] not in prominent and authored[u["userid"]] > 0]
    other_files = [str(p) for ds in others for p in ds.files if p.suffix == ".csv"]
    other_handles = set()
    for ds in others:
        with open(ds.dir / f"{ds.name}_users_csv_unhashed.csv", encoding="utf-8", newline="") as f:
            other_handles |= {row["user_screen_name"].lower() for row in csv.DictReader(f)}

    def clean(u) -> bool:
        if u["user_screen_name"].lower() in other_handles:
            return False
        uid_hit = subprocess.run(["grep", "-l", "-F", "-w", "-m1", "--", u["userid"], *other_files],
                                 capture_output=True)
        handle_hit = subprocess.run(["grep", "-l", "-i", "-E", "-m1", "--",
                                     f"@{u['user_screen_name']}([^A-Za-z0-9_]|$)", *other_files],
                                    capture_output=True)
        return not (uid_hit.stdout or handle_hit.stdout)

    def describe(u, kind: str) -> dict:
        uid = u["userid"]
        return {"kind": kind, "userid": uid, "screen_name": u["user_screen_name"],
                "followers": int(u["follower_count"]), "authored_tweets": authored[uid],
                "referring_rows": referring[uid], "tweet_files": len(parts.get(uid, ())),
                "tweet_files_in_dataset": len([p for p in touched.files if "_tweets_csv_unhashed" in p.name]),
                "dataset": touched.name}

    out = {}
    by_rows = sorted(cands, key=lambda u: (authored[u["userid"]] + referring[u["userid"]], u["userid"]))
    mid = len(by_rows) // 2
    # Walk outwards from the median until a clean account is found.
    for i in sorted(range(len(by_rows)), key=lambda i: (abs(i - mid), i)):
        if clean(by_rows[i]):
            out["typical"] = describe(by_rows[i], "typical")
            break
    by_files = sorted(cands, key=lambda u: (len(parts.get(u["userid"], ())),
                                            authored[u["userid"]] + referring[u["userid"]], u["userid"]))
    for u in by_files:
        if u["userid"] != out.get("typical", {}).get("userid") and clean(u):
            out["quiet"] = describe(u, "quiet")
            break
    if len(out) < 2:
        raise SystemExit("not enough accounts of the touched dataset are free of outside references")
    return out


# ---------------------------------------------------------------- store copies

def snapshot(src: Path, dst: Path) -> None:
    """A fresh, independent copy of an engine data dir, cheaply.

    Blobs are content-addressed and written by rename, never modified in place,
    so they are hard-linked; everything else (HEAD.json, the sqlite index) may be
    updated in place and is copied. Staging dirs are left out.
    """
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        if rel.parts[:1] == ("staging",):
            dirs[:] = []
            continue
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            s, d = Path(root) / name, dst / rel / name
            if rel.parts[:1] == ("blobs",):
                os.link(s, d)
            else:
                shutil.copy2(s, d)


def close_engine(eng) -> None:
    """Drop an Engine (and its sqlite handle) before its data dir is copied."""
    # Close the sqlite handle explicitly: the caller still holds a reference,
    # and a WAL database must be checkpointed/closed before it is copied.
    for obj in (eng, getattr(eng, "index", None)):
        close = getattr(obj, "close", None)
        if callable(close):
            close()
    gc.collect()


# ---------------------------------------------------------------- the peers

def naive_rewrite(src: Path, dst: Path, ids: set[str]) -> int:
    """Parse src with the csv module and write it to dst without the rows authored by `ids`.

    The kind of file is taken from dst's name (store files may be named by hash).
    """
    if dst.name.endswith(".csv"):
        with open(src, encoding="utf-8", newline="") as fi, \
                open(dst, "w", encoding="utf-8", newline="") as fo:
            r = csv.reader(fi)
            w = csv.writer(fo, quoting=csv.QUOTE_ALL, lineterminator="\n")
            header = next(r)
            w.writerow(header)
            ui = header.index("userid")
            for row in r:
                if row[ui] not in ids:
                    w.writerow(row)
    elif dst.name.endswith(".zip"):
        prefixes = tuple(i + "/" for i in ids)
        with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w") as zo:
            for info in zi.infolist():
                if not info.filename.startswith(prefixes):
                    zo.writestr(info, zi.read(info))
    else:
        shutil.copyfile(src, dst)
    return dst.stat().st_size


def all_files(eng, names: list[str]) -> list[tuple[Path, str]]:
    """(stored path, file name) of every file of every variant of the current release of `names`."""
    out = []
    for name in names:
        m = eng.manifest(name)
        for f in m["files"]:
            out.append((eng.file_path(name, m["version"], f["variant"], f["path"]), Path(f["path"]).name))
    return out


def rewritten_files(eng, releases: dict) -> list[dict]:
    """Files whose bytes differ from the parent release (new sha256), with their parent's path."""
    out = []
    for name, version in releases.items():
        new = eng.manifest(name, version)
        parent_v = new.get("parent_version")
        parent = eng.manifest(name, parent_v) if parent_v is not None else {"files": []}
        old = {(f["variant"], f["path"]): f for f in parent["files"]}
        for f in new["files"]:
            o = old.get((f["variant"], f["path"]))
            if o is None or o["sha256"] != f["sha256"]:
                out.append({"dataset": name, "variant": f["variant"], "path": f["path"],
                            "new_bytes": f["bytes"],
                            "parent_bytes": o["bytes"] if o else 0,
                            "parent_file": str(eng.file_path(name, parent_v, f["variant"], f["path"]))
                            if o else None})
    return out


def time_cp(files: list[str], dest: Path, fsync: bool) -> tuple[float, int]:
    """Wall time of one `cp` process copying `files` into dest (optionally + `sync` of the copies)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    # Distinct names: the same file name exists in several variants/datasets.
    links = dest.parent / (dest.name + "_src")
    if links.exists():
        shutil.rmtree(links)
    links.mkdir()
    srcs = []
    for i, f in enumerate(files):
        ln = links / f"{i}_{Path(f).name}"
        os.symlink(f, ln)
        srcs.append(str(ln))
    prefault()
    t0 = time.perf_counter()
    subprocess.run(["cp", "-L", *srcs, str(dest)], check=True)
    if fsync:
        subprocess.run(["sync", *[str(dest / Path(s).name) for s in srcs]], check=True)
    wall = time.perf_counter() - t0
    written = dir_bytes(dest.iterdir())
    shutil.rmtree(dest)
    shutil.rmtree(links)
    return wall, written


def prefault(nbytes: int = 512 * 1024 * 1024) -> None:
    """Touch, then free, nbytes of memory before a timed run (engine or cp alike).

    On this VM the kernel hands memory it has not touched for a while back to the
    host; the first write to such a page then costs a host fault, and writing new
    files (which needs fresh page-cache pages) ran up to 9x slower, in kernel time,
    whenever the free pages at hand were such pages. Freshly freed pages are not.
    """
    import numpy as np

    block = np.ones(nbytes, np.uint8)  # writes every page
    del block


def time_lookups(eng, uids: list[str], n: int = 300) -> dict:
    """Engine.footprint lookups (the account index) of these accounts in turn: median and p95 over n."""
    for uid in uids:
        eng.footprint(uid)  # the first call checks that the index follows HEAD
    ts = []
    for i in range(n):
        t0 = time.perf_counter()
        eng.footprint(uids[i % len(uids)])
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return {"median_ms": ts[n // 2] * 1e3, "p95_ms": ts[int(n * 0.95)] * 1e3, "lookups": n, "accounts": len(uids)}


def warm(paths) -> None:
    """Read files through the page cache, as cp finds its sources after the engine's runs."""
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.read(8 * 1024 * 1024):
                pass


def engine_run(Engine, state_dir: Path, run_dir: Path, batch: str, uid: str, first: bool,
               inputs=()) -> dict:
    """Apply one removal on a fresh copy of state_dir (left in run_dir); return its measurements.
    `inputs` (the touched dataset's files) are read first: every run starts from a warm page cache."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    snapshot(state_dir, run_dir)
    warm(inputs)
    # The copied index and HEAD are dirty in the page cache; written back during the timed run,
    # they would charge the correction with the benchmark's own setup (the first fsync waits
    # for the filesystem journal, which holds the copy's block allocations).
    os.sync()
    # The benchmark's own heap (corpus descriptions, account scans) is frozen out of the cyclic
    # garbage collector: a full collection over it, landing in a timed run, cost 0.15-0.3 s of CPU
    # that a worker process, with its small heap, never pays.
    gc.collect()
    gc.freeze()
    eng = Engine(run_dir, HASH_KEY, KEY_ID)
    prefault()
    with Measure() as m:
        res = eng.apply(batch, [(uid, "remove")], reason="benchmark")
    rec = {"wall_s": m.wall, "cpu_s": m.cpu, "sys_s": m.sys, "minor_faults": m.minor_faults,
           "major_faults": m.major_faults, "blocks_read": m.blocks_read, "gc_collections": m.gc_collections,
           "engine_duration_s": getattr(res, "duration_s", None),
           "bytes_written": int(getattr(res, "bytes_written", 0)),
           "files_rewritten": getattr(res, "files_rewritten", None),
           "rows_removed": getattr(res, "rows_removed", None),
           "rows_rewritten": getattr(res, "rows_rewritten", None),
           "releases": dict(getattr(res, "releases", {}) or {}),
           "noop": getattr(res, "noop", None),
           "already_applied": getattr(res, "already_applied", None),
           "loadavg": os.getloadavg()[0]}
    if first:
        rec["rewritten"] = rewritten_files(eng, rec["releases"])
        rep = eng.verify(next(iter(rec["releases"]))) if rec["releases"] else None
        rec["verify_after_ok"] = getattr(rep, "ok", None)
        rec["verify_after_problems"] = [str(p) for p in (getattr(rep, "problems", None) or [])][:5]
    close_engine(eng)
    return rec


# ---------------------------------------------------------------- main

def import_timed(eng, datasets, keep_source: bool) -> list[dict]:
    """Import each generated dataset, timed; its source files are removed unless keep_source."""
    out = []
    for x in datasets:
        nbytes = dir_bytes(x.files)
        with Measure() as m:
            eng.import_dataset(x.dir, x.name)
        out.append({"dataset": x.name, "bytes": nbytes, "wall_s": m.wall, "cpu_s": m.cpu})
        log(f"import {x.name}: {mb(nbytes):.0f} MB in {m.wall:.1f}s wall / {m.cpu:.1f}s CPU")
        if not keep_source:
            shutil.rmtree(x.dir)
    return out


def run(args) -> dict:
    """The whole benchmark; returns the results document."""
    try:
        from workers.engine.api import Engine
    except ImportError as e:
        raise SystemExit(f"workers.engine.api.Engine is not available yet: {e}")
    from workers.engine.hashing import pseudonym

    work = Path(args.workdir)
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"--workdir {work} is not empty; remove it or choose another")
    work.mkdir(parents=True, exist_ok=True)
    out = {"machine": machine_info(work), "args": vars(args).copy(),
           "engine_source_sha256": engine_source_digest(), "loadavg_start": os.getloadavg()}
    repeats = args.repeats
    size = int(args.size_gb * 1e9)
    d = args.datasets

    # 1. Corpus: D datasets (the first is the touched one) + as much untouched data again.
    bpt = calibrate_bytes_per_tweet(work / "pilot", args.seed)
    base_tweets = math.ceil(size * 1.04 / bpt)
    tpf = math.ceil(base_tweets / d / args.parts)
    log(f"generating base corpus: {d} datasets, {base_tweets} tweets (~{bpt:.0f} B/tweet), "
        f"{tpf} tweets per file")
    with Measure() as m:
        base = generate(work / "src", d, base_tweets, args.seed, tweets_per_file=tpf)
    base_csv = sum(csv_bytes(x) for x in base)
    base_all = sum(dir_bytes(x.files) for x in base)
    log(f"  {mb(base_csv):.0f} MB of CSV in {m.wall:.0f}s ({mb(base_all) / m.wall:.1f} MB/s)")
    out["synth_mb_per_s"] = mb(base_all) / m.wall
    touched, untouched = base[0], base[1:]
    untouched_tweets = sum(x.tweets for x in untouched)
    extra_names = [f"extra_{chr(ord('a') + i)}" for i in range(len(untouched))]
    log(f"generating the extra untouched datasets: {extra_names}, {untouched_tweets} tweets")
    extras = generate(work / "src_extra", extra_names, untouched_tweets, args.seed + 1,
                      tweets_per_file=tpf)
    accounts = pick_accounts(touched, untouched + extras)
    for a in accounts.values():
        log(f"account: {a}")
    out["accounts"] = accounts
    out["corpus_base"] = {
        "datasets": {x.name: {"tweets": x.tweets, "users": x.users, "csv_bytes": csv_bytes(x),
                              "all_bytes": dir_bytes(x.files),
                              "files": len(x.files)} for x in base},
        "master_csv_bytes": base_csv, "master_all_bytes": base_all,
        "tweets_per_file": tpf, "touched_dataset": touched.name,
    }
    out["corpus_extra"] = {
        "datasets": {x.name: {"tweets": x.tweets, "csv_bytes": csv_bytes(x),
                              "all_bytes": dir_bytes(x.files)} for x in extras},
        "master_csv_bytes": sum(csv_bytes(x) for x in extras),
        "untouched_base_csv_bytes": sum(csv_bytes(x) for x in untouched),
    }

    # 2. Import the base corpus; import and verify throughput.
    data = work / "data"
    eng = Engine(data, HASH_KEY, KEY_ID)
    imports = import_timed(eng, base, args.keep_source)
    verifies = []
    for x in base:
        with Measure() as m:
            rep = eng.verify(x.name)
        verifies.append({"dataset": x.name, "bytes": int(rep.bytes_checked), "files": rep.files_checked,
                         "ok": bool(rep.ok), "wall_s": m.wall, "cpu_s": m.cpu})
        log(f"verify {x.name}: ok={rep.ok} {mb(rep.bytes_checked):.0f} MB in {m.wall:.1f}s")
    for a in accounts.values():
        fp = eng.footprint(a["userid"])
        a["footprint"] = [{"dataset": e.dataset, "version": e.version, "authored_tweets": e.authored_tweets,
                           "in_users_file": e.in_users_file, "referring_rows": e.referring_rows,
                           "hashed_publicly": e.hashed_publicly, "files": len(e.files)} for e in fp]
        log(f"footprint of {a['kind']}: {a['footprint']}")
        if {e.dataset for e in fp} != {touched.name}:
            log(f"WARNING: the engine sees the {a['kind']} account outside the touched dataset")
    # Lookups: the two accounts and one the index has never seen.
    lookup_ids = [a["userid"] for a in accounts.values()] + ["1"]
    out["lookup_base"] = time_lookups(eng, lookup_ids)
    names = [x.name for x in base]
    store_files = all_files(eng, names)
    touched_inputs = [p for p, _ in all_files(eng, [touched.name])]
    out["corpus_base"]["store_bytes_both_variants"] = dir_bytes(p for p, _ in store_files)
    close_engine(eng)

    # A cheap frozen copy of the base state: base and doubled runs are interleaved
    # later so that a drifting background load hits both alike.
    state_base = work / "state_base"
    snapshot(data, state_base)

    # 3. (b) naive peer: every file of both variants, once (its cost does not depend on the account).
    a0 = accounts["typical"]["userid"]
    ids = {a0, pseudonym(HASH_KEY, a0, 0)}
    naive_out = work / "naive_out"
    naive_out.mkdir()
    written = 0
    with Measure() as m:
        for i, (f, fname) in enumerate(store_files):
            written += naive_rewrite(f, naive_out / f"{i}_{fname}", ids)
    naive = {"wall_s": m.wall, "cpu_s": m.cpu, "bytes_written": written, "files": len(store_files),
             "bytes_read": dir_bytes(p for p, _ in store_files)}
    shutil.rmtree(naive_out)
    log(f"naive rewrite of {len(store_files)} files: {m.wall:.1f}s, {mb(written):.0f} MB written")

    # 4. Double the untouched part (in `data`; state_base keeps the base state).
    eng = Engine(data, HASH_KEY, KEY_ID)
    imports += import_timed(eng, extras, args.keep_source)
    for a in accounts.values():
        a["footprint_doubled"] = sorted({e.dataset for e in eng.footprint(a["userid"])})
    out["lookup_doubled"] = time_lookups(eng, lookup_ids)
    log(f"footprint lookups: median {out['lookup_base']['median_ms']:.2f} ms (p95 "
        f"{out['lookup_base']['p95_ms']:.2f}), doubled {out['lookup_doubled']['median_ms']:.2f} ms")
    out["corpus_doubled_store_bytes_both_variants"] = dir_bytes(p for p, _ in all_files(eng, names + extra_names))
    close_engine(eng)

    # 5. Per account: (a) the same correction, alternately on fresh copies of the base
    #    and of the doubled store; (c) cp of the parent versions of exactly the files
    #    the engine rewrote (floor), with and without fsync. The cp runs are interleaved with
    #    the engine runs: how fast this machine writes new files drifts with the filesystem's
    #    state (both cp and the engine ran up to 9x slower, in kernel time, once a few GB of
    #    outputs were kept around), so each repeat measures both under the same conditions.
    per_account = {}
    for kind, a in accounts.items():
        runs_b, runs_d, cps, cps_sync = [], [], [], []
        cp_src = []
        for k in range(repeats):
            for label, state, runs in (("base", state_base, runs_b), ("doubled", data, runs_d)):
                rd = work / f"run_{kind}_{label}_{k}"
                rec = engine_run(Engine, state, rd, f"bench-remove-{kind}", a["userid"], first=(k == 0),
                                 inputs=touched_inputs)
                runs.append(rec)
                log(f"engine {kind} {label} run {k + 1}/{repeats}: {rec['wall_s']:.2f}s wall, "
                    f"{rec['cpu_s']:.2f}s CPU ({rec['sys_s']:.2f}s system, {rec['minor_faults']}+"
                    f"{rec['major_faults']} page faults, {rec['blocks_read']} blocks read, "
                    f"gc {rec['gc_collections']}), {mb(rec['bytes_written']):.1f} MB written, "
                    f"releases {rec['releases']}, load {rec['loadavg']:.1f}")
                if k == 0 and label == "base":
                    cp_src = [r["parent_file"] for r in rec["rewritten"] if r["parent_file"]]
                else:
                    shutil.rmtree(rd)
            cps.append(time_cp(cp_src, work / "cp_out", fsync=False))
            cps_sync.append(time_cp(cp_src, work / "cp_out", fsync=True))
        rewritten = runs_b[0]["rewritten"]
        log(f"cp of {len(cp_src)} files, {mb(cps[0][1]):.1f} MB: {statistics.median(c[0] for c in cps):.2f}s "
            f"(+fsync {statistics.median(c[0] for c in cps_sync):.2f}s)")
        # The parent files were read through the first base run's copy (hard links to the same blobs).
        shutil.rmtree(work / f"run_{kind}_base_0")
        per_account[kind] = {"engine_base_runs": runs_b, "engine_doubled_runs": runs_d,
                             "rewritten_files": rewritten,
                             "cp": {"runs_s": [c[0] for c in cps], "bytes_written": cps[0][1],
                                    "files": len(cp_src)},
                             "cp_fsync": {"runs_s": [c[0] for c in cps_sync]}}

    # 6. Summary.
    imp_bytes = sum(i["bytes"] for i in imports)
    imp_wall = sum(i["wall_s"] for i in imports)
    imp_cpu = sum(i["cpu_s"] for i in imports)
    ver_bytes = sum(v["bytes"] for v in verifies)
    ver_wall = sum(v["wall_s"] for v in verifies)
    ver_cpu = sum(v["cpu_s"] for v in verifies)
    for kind, pa in per_account.items():
        e_base = statistics.median(r["wall_s"] for r in pa["engine_base_runs"])
        e_doub = statistics.median(r["wall_s"] for r in pa["engine_doubled_runs"])
        cp_t = statistics.median(pa["cp"]["runs_s"])
        cp_sync_t = statistics.median(pa["cp_fsync"]["runs_s"])
        pa["summary"] = {
            "engine_base_s": e_base,
            "engine_doubled_s": e_doub,
            "engine_bytes_written": pa["engine_base_runs"][0]["bytes_written"],
            "engine_doubled_bytes_written": pa["engine_doubled_runs"][0]["bytes_written"],
            "files_rewritten": len(pa["rewritten_files"]),
            "cp_s": cp_t,
            "cp_fsync_s": cp_sync_t,
            "cp_bytes_written": pa["cp"]["bytes_written"],
            "naive_over_engine": naive["wall_s"] / e_base,
            "engine_over_cp": e_base / cp_t,
            # Each engine run over the cp run right after it (same conditions), median of the repeats.
            "engine_over_cp_paired": statistics.median(
                r["wall_s"] / c for r, c in zip(pa["engine_base_runs"], pa["cp"]["runs_s"])),
            "engine_over_cp_fsync": e_base / cp_sync_t,
            "doubled_over_base": e_doub / e_base,
            "engine_base_cpu_s": statistics.median(r["cpu_s"] for r in pa["engine_base_runs"]),
            "engine_doubled_cpu_s": statistics.median(r["cpu_s"] for r in pa["engine_doubled_runs"]),
            "verify_after_ok": pa["engine_base_runs"][0].get("verify_after_ok"),
        }
        # The engine rewrites files on every core and cp uses one: the engine's CPU time over cp's wall.
        pa["summary"]["engine_cpu_over_cp"] = pa["summary"]["engine_base_cpu_s"] / cp_t
    out.update({
        "per_account": per_account,
        "naive": naive,
        "imports": imports,
        "verifies": verifies,
        "summary": {
            "naive_s": naive["wall_s"],
            "naive_bytes_written": naive["bytes_written"],
            "import_mb_s": mb(imp_bytes) / imp_wall,
            "import_mb_s_per_core": per_core(imp_bytes, imp_wall, imp_cpu),
            "import_mb_per_cpu_s": mb(imp_bytes) / imp_cpu,
            "verify_mb_s": mb(ver_bytes) / ver_wall,
            "verify_mb_s_per_core": per_core(ver_bytes, ver_wall, ver_cpu),
            "verify_mb_per_cpu_s": mb(ver_bytes) / ver_cpu,
            "naive_mb_per_cpu_s": mb(naive["bytes_read"]) / naive["cpu_s"],
            "loadavg_end": os.getloadavg(),
            "verify_ok": all(v["ok"] for v in verifies),
        },
        "targets": {"naive_over_engine_min": 50, "engine_over_cp_max": 3, "doubled_over_base_max": 1.10},
    })
    if not args.keep:
        shutil.rmtree(work)
    return out


def table(r: dict) -> str:
    """The human-readable report."""
    s, m, t = r["summary"], r["machine"], r["targets"]
    cb = r["corpus_base"]

    def ok(flag: bool) -> str:
        return "met" if flag else "MISSED"

    lines = [
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), {m['ram_bytes'] / 2**30:.1f} GiB RAM, "
        f"Python {m['python']}, {m['platform']}",
        f"Base corpus: {len(cb['datasets'])} datasets, {sum(d['tweets'] for d in cb['datasets'].values()):,} "
        f"tweets, {mb(cb['master_csv_bytes']):,.0f} MB master CSV ({mb(cb['master_all_bytes']):,.0f} MB with "
        f"media), {mb(cb['store_bytes_both_variants']):,.0f} MB in the store (both variants), "
        f"{cb['tweets_per_file']:,} tweets per file",
        f"Doubled: + {mb(r['corpus_extra']['master_csv_bytes']):,.0f} MB master CSV of untouched datasets "
        f"(untouched base part: {mb(r['corpus_extra']['untouched_base_csv_bytes']):,.0f} MB); "
        f"store {mb(r['corpus_doubled_store_bytes_both_variants']):,.0f} MB",
        f"(b) naive csv rewrite of every file of both variants: {s['naive_s']:.2f} s, "
        f"{mb(s['naive_bytes_written']):,.0f} MB written",
    ]
    for kind, pa in r["per_account"].items():
        a, ps = r["accounts"][kind], pa["summary"]
        fp = ", ".join(f"{e['dataset']}: {e['authored_tweets']} authored, {e['referring_rows']} referring"
                       for e in a["footprint"])
        lines += [
            "",
            f"Account [{kind}] {a['userid']} (@{a['screen_name']}, {a['followers']} followers) in "
            f"{a['dataset']}: {a['authored_tweets']} tweets, {a['referring_rows']} referring rows, in "
            f"{a['tweet_files']} of {a['tweet_files_in_dataset']} tweet files; engine footprint: {fp}",
            f"  {'measure':44} {'time (s)':>10} {'MB written':>11}",
            f"  {'(a) engine apply, median of ' + str(len(pa['engine_base_runs'])):44} "
            f"{ps['engine_base_s']:10.2f} {mb(ps['engine_bytes_written']):11.1f}",
            f"  {'(b) naive rewrite of everything':44} {s['naive_s']:10.2f} {mb(s['naive_bytes_written']):11.1f}",
            f"  {'(c) cp of the rewritten files, median':44} {ps['cp_s']:10.2f} {mb(ps['cp_bytes_written']):11.1f}",
            f"  {'    cp + fsync of the copies, median':44} {ps['cp_fsync_s']:10.2f} "
            f"{mb(ps['cp_bytes_written']):11.1f}",
            f"  {'(a) engine apply after doubling, median':44} {ps['engine_doubled_s']:10.2f} "
            f"{mb(ps['engine_doubled_bytes_written']):11.1f}",
            f"  engine runs (s): base {[round(x['wall_s'], 2) for x in pa['engine_base_runs']]}, doubled "
            f"{[round(x['wall_s'], 2) for x in pa['engine_doubled_runs']]}; {ps['files_rewritten']} files "
            "rewritten: " + ", ".join(f"{x['variant']}/{x['path']}" for x in pa["rewritten_files"]),
            f"  naive/engine = {ps['naive_over_engine']:7.1f}x  (target >= {t['naive_over_engine_min']}x: "
            f"{ok(ps['naive_over_engine'] >= t['naive_over_engine_min'])})",
            f"  engine/cp    = {ps['engine_over_cp']:7.2f}x  (target <= {t['engine_over_cp_max']}x: "
            f"{ok(ps['engine_over_cp'] <= t['engine_over_cp_max'])}); engine/(cp+fsync) = "
            f"{ps['engine_over_cp_fsync']:.2f}x; engine CPU time/cp = {ps['engine_cpu_over_cp']:.2f}x",
            f"  doubled/base = {ps['doubled_over_base']:7.2f}   (target <= {t['doubled_over_base_max']}: "
            f"{ok(ps['doubled_over_base'] <= t['doubled_over_base_max'])})",
            f"  engine CPU time, median: base {ps['engine_base_cpu_s']:.2f}s, doubled "
            f"{ps['engine_doubled_cpu_s']:.2f}s (ratio {ps['engine_doubled_cpu_s'] / ps['engine_base_cpu_s']:.2f})",
            f"  verify of the touched dataset after the correction ok: {ps['verify_after_ok']}",
        ]
    lines += [
        "",
        f"import = {s['import_mb_s']:.1f} MB/s wall, {s['import_mb_s_per_core']:.1f} MB/s per core, "
        f"{s['import_mb_per_cpu_s']:.1f} MB per CPU-second (source bytes: CSV + media)",
        f"verify = {s['verify_mb_s']:.1f} MB/s wall, {s['verify_mb_s_per_core']:.1f} MB/s per core, "
        f"{s['verify_mb_per_cpu_s']:.1f} MB per CPU-second (bytes checked, both variants; all ok: {s['verify_ok']})",
        f"naive peer: {s['naive_mb_per_cpu_s']:.1f} MB per CPU-second",
        f"footprint lookup (account index) = median {r['lookup_base']['median_ms']:.2f} ms, p95 "
        f"{r['lookup_base']['p95_ms']:.2f} ms; after doubling {r['lookup_doubled']['median_ms']:.2f} ms, p95 "
        f"{r['lookup_doubled']['p95_ms']:.2f} ms (target well under 10 ms)",
        f"load average (1 min) at start {r['loadavg_start'][0]:.1f}, at end {s['loadavg_end'][0]:.1f} "
        f"on {m['nproc']} cores (other work was running on the machine)",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.0, help="master CSV of the base corpus (GB, 10**9)")
    ap.add_argument("--workdir", default="/tmp/bench_correction", help="scratch dir (must be absent or empty)")
    ap.add_argument("--datasets", type=int, default=4, help="datasets in the base corpus (>= 2)")
    ap.add_argument("--parts", type=int, default=8, help="tweet files per dataset")
    ap.add_argument("--repeats", type=int, default=5, help="repeats of the cheap measurements (engine, cp)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the full results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the workdir afterwards")
    ap.add_argument("--keep-source", action="store_true", help="keep generated source files after import")
    args = ap.parse_args(argv)
    if args.size_gb <= 0 or args.datasets < 2 or args.parts < 1 or args.repeats < 1:
        ap.error("--size-gb must be > 0, --datasets >= 2, --parts >= 1, --repeats >= 1")
    r = run(args)
    if args.json:
        print(json.dumps(r, indent=1, default=str))
    else:
        print(table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
