"""Copy a local release store into an S3-compatible bucket: every blob HEAD reaches, then HEAD last.

Idempotent and resumable: blobs are content-addressed, so those already in the bucket are skipped,
and HEAD is written only after every blob it names is there, with a conditional write. A run
interrupted anywhere leaves a bucket whose HEAD (if any) names only complete blobs.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import faults
from .errors import EngineError
from .store import Store


@dataclass(frozen=True)
class MigrateReport:
    """What a migration did."""

    blobs: int  # blobs HEAD reaches
    copied: int  # of which uploaded by this run
    bytes_copied: int
    head: str  # "written", "unchanged" or "fast-forwarded"


def reachable(store: Store, head: dict) -> list[str]:
    """Every blob the HEAD document reaches: manifests, their files, the account state, batch results."""
    shas: set[str] = set()
    for entry in head["datasets"].values():
        for msha in entry["versions"].values():
            shas.add(msha)
            shas.update(f["sha256"] for f in store.get_json(msha)["files"])
    if head.get("state"):
        shas.add(head["state"])
    shas.update(head.get("batches", {}).values())
    return sorted(shas)


class _Unchanged(Exception):
    pass


def migrate_store(src: Store, dst, progress: bool = False) -> MigrateReport:
    """Copy src (a local store) into dst (an S3Store); see the module docstring."""
    head = src.read_head()
    shas = reachable(src, head)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(shas), unit="blob", desc="migrate-store", leave=False)
    copied = nbytes = 0
    for sha in shas:
        path = src.blobs.local_path(sha)
        size = path.stat().st_size
        if dst.blobs.size(sha) != size:  # content-addressed: the same size at the address is the same blob
            dst.blobs.upload(path, sha)
            copied += 1
            nbytes += size
        faults.checkpoint("migrate_blob")
        if bar:
            bar.update(1)
    if bar:
        bar.close()

    outcome = {"head": "written"}

    def update(cur: dict) -> dict:
        mine = {k: head.get(k) for k in ("datasets", "state", "batches")}
        if {k: cur.get(k) for k in mine} == mine:
            raise _Unchanged()
        if cur["datasets"] or cur.get("batches"):
            # A bucket migrated earlier may move forward to this store's HEAD, never sideways.
            for ds, e in cur["datasets"].items():
                theirs = head["datasets"].get(ds, {}).get("versions", {})
                if any(theirs.get(v) != sha for v, sha in e["versions"].items()):
                    raise EngineError(f"the bucket already holds a different store (dataset {ds}); nothing written")
            outcome["head"] = "fast-forwarded"
        new = dict(head)
        new["fence"] = max(head.get("fence") or 0, cur.get("fence") or 0) or head.get("fence")
        return new

    try:
        dst.publish(update)
    except _Unchanged:
        outcome["head"] = "unchanged"
    return MigrateReport(len(shas), copied, nbytes, outcome["head"])
