"""Peak resident size of importing one large tweets file (issue: a 5 GB file under 1 GB resident).

    python bench/import_memory.py [--gb 5.0] [--workdir /tmp/bench_import_memory] [--keep]

Generates one synthetic dataset (workers.engine.synth) whose tweets are all in
ONE file of about --gb GB, no media, then imports it with Engine.import_dataset
in a fresh child process and reports the child's peak resident size (ru_maxrss),
its resident size before the import, the wall time and MB/s. Never run as a test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

CHILD = """
import json, resource, sys, time
from pathlib import Path
from workers.engine.api import Engine
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
Engine(Path(sys.argv[1]), b"bench-import-memory-key-0123456789", "bench-1").import_dataset(Path(sys.argv[2]), sys.argv[3])
wall = time.perf_counter() - t0
print(json.dumps({"rss_before_kb": before, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "wall_s": wall}))
"""


def main(argv=None) -> int:
    """Generate, import in a child process, print the figures as JSON."""
    from workers.engine.synth import generate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=5.0, help="size of the tweets file (GB, 10**9)")
    ap.add_argument("--workdir", default="/tmp/bench_import_memory")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"--workdir {work} is not empty")
    work.mkdir(parents=True, exist_ok=True)
    try:
        tweets = math.ceil(args.gb * 1e9 / 500)  # about 500 bytes a tweet, users file included
        t0 = time.perf_counter()
        ds = generate(work / "src", ["big"], tweets, 1, tweets_per_file=tweets, media=False)[0]
        gen_s = time.perf_counter() - t0
        files = {p.name: p.stat().st_size for p in ds.files}
        env = dict(os.environ, PYTHONPATH=str(_HERE.parent))
        out = subprocess.run([sys.executable, "-c", CHILD, str(work / "data"), str(ds.dir), "big"],
                             capture_output=True, text=True, env=env, check=True)
        res = json.loads(out.stdout)
        total = sum(files.values())
        res.update({"files": files, "tweets": tweets, "generate_s": gen_s,
                    "import_mb_s": total / 1e6 / res["wall_s"], "nproc": len(os.sched_getaffinity(0))})
        print(json.dumps(res, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
