"""Benchmark of import: with an empty ledger vs 10,000 standing decisions, and vs a naive csv-module peer.

    python bench/import_ledger.py [--tweets 400000] [--decisions 10000] [--repeats 3] [--workdir DIR] [--json]

Generates one synthetic dataset (workers.engine.synth, no media), then, in one run and
alternating so background load hits all alike:
(a) Engine.import_dataset with an empty ledger;
(b) the same with --decisions standing decisions: 1% of them about accounts of the dataset
    (remove and rehash, half each), the rest about accounts it does not hold, as in an archive
    whose ledger covers every earlier dataset;
(c) a naive peer that parses every record with the csv module and writes both variants (the
    unhashed copy and the hashed one with author, reference and mention ids replaced; no
    @handles, no checks, no index, no fsync): less work than the engine does.
Each figure is the median of --repeats, in MB of source CSV per CPU-second. Never run as a test.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import hmac
import json
import os
import platform
import random
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from workers.engine.api import Engine  # noqa: E402
from workers.engine.synth import generate  # noqa: E402

KEY = b"bench-import-ledger-key-0123456789"
csv.field_size_limit(64 * 1024 * 1024)


def cpu() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    return s.ru_utime + s.ru_stime


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of fn()."""
    c0, t0 = cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu() - c0


def ledger(src: Path, name: str, n: int, seed: int) -> list[dict]:
    """n decisions: 1% about accounts of the dataset, the rest about accounts elsewhere."""
    rng = random.Random(seed)
    with open(src / f"{name}_users_csv_unhashed.csv", newline="", encoding="utf-8") as f:
        users = [(r["userid"], r["user_screen_name"]) for r in csv.DictReader(f)]
    mine = rng.sample(users, min(len(users) // 2, max(1, n // 100)))
    out = [{"user_id": u, "remedy": "remove" if i % 2 else "rehash", "epoch": 1, "screen_names": [s.lower()]}
           for i, (u, s) in enumerate(mine)]
    taken = {u for u, _ in users}
    while len(out) < n:
        uid = str(rng.randrange(10**17, 10**18))
        if uid not in taken:
            taken.add(uid)
            out.append({"user_id": uid, "remedy": rng.choice(["remove", "rehash"]), "epoch": rng.randint(1, 3),
                        "screen_names": [f"acct_{uid[-9:]}"]})
    return out


def naive_import(src: Path, name: str, out: Path) -> None:
    """Parse and write both variants with the csv module (the peer)."""
    def p(uid: str) -> str:
        return base64.b64encode(hmac.new(KEY, f"{uid}:0".encode(), hashlib.sha256).digest()).decode()

    out.mkdir(parents=True, exist_ok=True)
    hashed: dict[str, str] = {}
    files = [src / f"{name}_users_csv_unhashed.csv"] + sorted(src.glob(f"{name}_tweets_csv_unhashed*.csv"))
    for path in files:
        with open(path, newline="", encoding="utf-8") as fi, \
                open(out / path.name, "w", newline="", encoding="utf-8") as fu, \
                open(out / path.name.replace("_unhashed", "_hashed"), "w", newline="", encoding="utf-8") as fh:
            r = csv.reader(fi)
            wu = csv.writer(fu, quoting=csv.QUOTE_ALL, lineterminator="\n")
            wh = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n")
            header = next(r)
            wu.writerow(header)
            wh.writerow(header)
            c = {h: i for i, h in enumerate(header)}
            for row in r:
                wu.writerow(row)
                if "follower_count" in c and path.name.startswith(f"{name}_users") and int(row[c["follower_count"]]) < 5000:
                    hashed[row[c["userid"]]] = p(row[c["userid"]])
                new = list(row)
                if row[c["userid"]] in hashed:
                    for f in ("userid", "user_display_name", "user_screen_name"):
                        new[c[f]] = hashed[row[c["userid"]]]
                for f in ("in_reply_to_userid", "retweet_userid"):
                    if f in c and row[c[f]] in hashed:
                        new[c[f]] = hashed[row[c[f]]]
                if "user_mentions" in c and row[c["user_mentions"]] not in ("", "[]"):
                    ids = row[c["user_mentions"]].strip("[]").split(", ")
                    new[c["user_mentions"]] = "[" + ", ".join(hashed.get(i, i) for i in ids) + "]"
                wh.writerow(new)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tweets", type=int, default=400_000)
    ap.add_argument("--decisions", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_import_ledger"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    shutil.rmtree(a.workdir, ignore_errors=True)
    a.workdir.mkdir(parents=True)
    [ds] = generate(a.workdir / "src", ["bench"], a.tweets, a.seed, media=False)
    src_bytes = sum(p.stat().st_size for p in ds.dir.iterdir())
    decisions = ledger(ds.dir, ds.name, a.decisions, a.seed)
    runs: dict[str, list[tuple[float, float]]] = {"empty": [], "ledger": [], "naive": []}
    for i in range(a.repeats):
        for kind in ("empty", "ledger", "naive"):
            d = a.workdir / f"{kind}{i}"
            if kind == "naive":
                runs[kind].append(timed(lambda: naive_import(ds.dir, ds.name, d)))
            else:
                eng = Engine(d, KEY, "bench")
                runs[kind].append(timed(lambda: eng.import_dataset(ds.dir, ds.name,
                                                                    decisions=decisions if kind == "ledger" else None)))
                eng.index.close()
            shutil.rmtree(d)
            print(f"[{kind} {i}] wall {runs[kind][-1][0]:.2f}s cpu {runs[kind][-1][1]:.2f}s", file=sys.stderr, flush=True)
    mb = src_bytes / 1e6
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
    res = {
        "machine": {"nproc": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "source_mb": round(mb, 1), "decisions": a.decisions,
        "mb_per_cpu_s": {k: round(mb / c, 1) for k, (_, c) in med.items()},
        "wall_s": {k: round(w, 2) for k, (w, _) in med.items()},
        "ledger_over_empty_cpu": round(med["ledger"][1] / med["empty"][1], 3),
        # Each repeat's ledger run against the empty run just before it: the VM's speed drifts between
        # repeats, and a pair shares the moment.
        "ledger_over_empty_cpu_pairs": [round(l[1] / e[1], 3) for e, l in zip(runs["empty"], runs["ledger"])],
        "engine_over_naive_speed": round(med["naive"][1] / med["empty"][1], 2),
    }
    shutil.rmtree(a.workdir, ignore_errors=True)
    print(json.dumps(res, indent=1) if a.json else "\n".join(f"{k}: {v}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
