"""The dataset engine facade: import, publish, index, correct, verify and export datasets (no Flask)."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from pathlib import Path

from . import csvio, faults
from .correct import Corrector, Target, rewrite_csv, scan_zip, write_zip
from .errors import (
    BadCorrection,
    EngineError,
    ImportFailed,
    PublishConflict,
    UnknownDataset,
    UnknownFile,
    UnknownVersion,
    VerificationFailed,
)
from .export import export_release
from .handles import HANDLE_CHARS
from .hashing import account_digest, hashed_file_name, is_hashed, pseudonym
from .importer import run_import, utcnow
from .index import Index, contributions
from .model import (
    CorrectionPlan,
    CorrectionResult,
    DatasetInfo,
    FileInfo,
    FootprintEntry,
    VerifyReport,
    VersionInfo,
)
from .batch import BatchPlan, FileOutcome, FileTask, PreparedTarget, ReleaseSet, TouchedDataset
from .store import HashingWriter, Store
from .verify import Forbidden, RewriteCheck, full_scan, verify_zip_rewrite

__all__ = [
    "Engine", "FileInfo", "VersionInfo", "DatasetInfo", "FootprintEntry", "CorrectionPlan",
    "CorrectionResult", "VerifyReport", "EngineError", "UnknownDataset", "UnknownVersion",
    "UnknownFile", "ImportFailed", "VerificationFailed", "PublishConflict", "BadCorrection",
]

ACTIONS = ("remove", "rehash")
SCREEN_NAME_RE = re.compile(rf"[{HANDLE_CHARS}]+")  # a whole handle, as handles.py defines it


class _Enough(Exception):
    """Raised inside a sample scan once it holds every row it may return."""


class _AlreadyPublished(Exception):
    pass


def _gil_aware_order(entries: list[dict]) -> list[int]:
    """The order to rewrite files in (indexes of `entries`): media archives, largest first, taking turns
    with the other files, largest first, so that two threads each run one archive's check (GIL-bound)
    beside the other's hashing (GIL-free)."""
    def by_size(media: bool) -> list[int]:
        return sorted((i for i, e in enumerate(entries) if (e["kind"] == "media") == media),
                      key=lambda i: -entries[i]["bytes"])

    media, other = by_size(True), by_size(False)
    turns = [i for pair in zip(media, other) for i in pair]
    n = min(len(media), len(other))
    return turns + media[n:] + other[n:]


class Engine:
    """All dataset operations over one data dir, with one hashing key."""

    def __init__(self, data_dir: Path, hash_key: bytes, key_id: str, store: Store | None = None):
        """`store` defaults to the local store in data_dir; with a remote one (store.open_store) data_dir
        is this process's own work dir: staging, the object cache and its copy of the account index."""
        self.data_dir = Path(data_dir)
        self.key = hash_key
        self.key_id = key_id
        self.store = store or Store(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store.clean_stale_staging()
        self.index = Index(self.data_dir / "index.sqlite")

    # -- releases -----------------------------------------------------------
    def _entry(self, head: dict, name: str) -> dict:
        try:
            return head["datasets"][name]
        except KeyError:
            raise UnknownDataset(f"no dataset named {name!r}") from None

    def _manifest_sha(self, head: dict, name: str, version: int | None) -> tuple[int, str]:
        entry = self._entry(head, name)
        v = entry["current"] if version is None else int(version)
        sha = entry["versions"].get(str(v))
        if sha is None:
            raise UnknownVersion(f"dataset {name!r} has no version {version}")
        return v, sha

    def _version_info(self, name: str, version: int, sha: str, current: int) -> VersionInfo:
        m = self.store.get_json(sha)
        return VersionInfo(
            dataset=name, version=version, status="current" if version == current else "withdrawn",
            created_at=m["created_at"], parent_version=m["parent_version"], key_id=m["key_id"],
            batch_id=m["batch_id"], accounts=m["accounts"], tweets=m["tweets"], summary=dict(m["summary"]),
            files=[FileInfo(e["variant"], e["path"], e["bytes"], e["rows"], e["sha256"]) for e in m["files"]],
        )

    def _dataset_info(self, head: dict, name: str) -> DatasetInfo:
        entry = self._entry(head, name)
        cur = entry["current"]
        versions = sorted((int(v), sha) for v, sha in entry["versions"].items())
        return DatasetInfo(name, cur, [self._version_info(name, v, sha, cur) for v, sha in versions])

    def list_datasets(self) -> list[DatasetInfo]:
        """Every dataset with its releases."""
        head = self.store.read_head()
        return [self._dataset_info(head, n) for n in sorted(head["datasets"])]

    def get_dataset(self, name: str) -> DatasetInfo:
        """One dataset with its releases."""
        return self._dataset_info(self.store.read_head(), name)

    def manifest(self, name: str, version: int | None = None) -> dict:
        """The manifest of a release (None = current), with its status added."""
        head = self.store.read_head()
        v, sha = self._manifest_sha(head, name, version)
        m = self.store.get_json(sha)
        m["status"] = "current" if v == head["datasets"][name]["current"] else "withdrawn"
        return m

    def file_path(self, name: str, version: int, variant: str, filename: str) -> Path:
        """Local path of a published file; only names listed in that manifest resolve."""
        m = self.manifest(name, version)
        for e in m["files"]:
            if e["variant"] == variant and e["path"] == filename:
                return self.store.blobs.local_path(e["sha256"])
        raise UnknownFile(f"{variant}/{filename} is not a file of {name} version {m['version']}")

    def file_url(self, name: str, version: int, variant: str, filename: str, seconds: int) -> str | None:
        """A presigned GET URL (at most 15 minutes) of a published file when the store serves files
        itself, else None (the caller streams file_path); only names listed in that manifest resolve."""
        if not hasattr(self.store.blobs, "presigned_url"):
            return None
        m = self.manifest(name, version)
        for e in m["files"]:
            if e["variant"] == variant and e["path"] == filename:
                return self.store.blobs.presigned_url(e["sha256"], filename, seconds)
        raise UnknownFile(f"{variant}/{filename} is not a file of {name} version {m['version']}")

    # -- account state ------------------------------------------------------
    def _state(self, head: dict) -> dict:
        ref = head.get("state")
        return self.store.get_json(ref)["accounts"] if ref else {}

    def _account(self, state: dict, user_id: str) -> tuple[str, dict | None]:
        d = account_digest(self.key, user_id)
        return d, state.get(d)

    # -- import / export / verify --------------------------------------------
    def import_dataset(self, src_dir: Path, name: str, progress: bool = False, decisions=None) -> VersionInfo:
        """Import an unhashed dataset dir as release 1 of `name` (both variants), with every standing
        decision of the ledger (`decisions`: dicts of user_id, remedy, epoch, screen_names) applied."""
        epoch = self._epochs(self.store.read_head())
        v, sha, _ = run_import(self.store, self.index, Path(src_dir), name, self.key, self.key_id, epoch, progress,
                               decisions)
        self._share_index(name, sha)
        return self._version_info(name, v, sha, v)

    def _epochs(self, head: dict):
        state = self._state(head)

        def epoch(uid: str) -> int:
            st = self._account(state, uid)[1]
            return st["epoch"] if st else 0

        return epoch

    def rederive(self, name: str, decisions=None, progress: bool = False) -> VersionInfo:
        """Publish the next release of `name`, derived from its current unhashed files under the current
        rules and ledger (the caller withdraws nothing: the new version simply becomes current)."""
        import tempfile

        head = self.store.read_head()
        v, msha = self._manifest_sha(head, name, None)
        m = self.store.get_json(msha)
        keep = frozenset(st["current"] for st in self._state(head).values())
        with tempfile.TemporaryDirectory(dir=self.data_dir) as tmp:
            for e in m["files"]:
                if e["variant"] == "unhashed":
                    os.link(self.store.blobs.local_path(e["sha256"]), Path(tmp) / e["path"])
            nv, nsha, nm = run_import(self.store, self.index, Path(tmp), name, self.key, self.key_id,
                                      self._epochs(head), progress, decisions, parent=(v, msha), keep=keep,
                                      batch_id=f"rederive-{name}-{v}")
        self._share_index(name, nsha)
        return self._version_info(name, nv, nsha, nv)

    def standing_epoch(self, user_id: str) -> int:
        """The pseudonym epoch a decision about the account stands at: the one its last correction moved
        it to, or 1 for an account never corrected (its first correction's epoch)."""
        st = self._account(self._state(self.store.read_head()), user_id)[1]
        return st["epoch"] if st else 1

    def known_screen_names(self, user_id: str) -> set[str]:
        """Lowercased screen names the current releases show for the account (raw or current identity)."""
        head = self.store.read_head()
        self._sync_index(head)
        st = self._account(self._state(head), user_id)[1]
        names = set(self.index.screen_names(user_id))
        if st:
            names |= self.index.screen_names(st["current"])
        return {n for n in names if SCREEN_NAME_RE.fullmatch(n)}

    def disobeying(self, user_id: str, remedy: str, epoch: int, screen_names=()) -> list[str]:
        """Datasets whose current release does not obey the decision (remedy at epoch): the raw id, a
        screen name as @handle or value, or an earlier pseudonym is still there, or a removed account's
        own rows or media are."""
        head = self.store.read_head()
        self._sync_index(head)
        names = {s.lower() for s in screen_names} | self.index.screen_names(user_id)
        bad = set(self.index.locate(user_id, names))
        for k in range(epoch):
            bad |= set(self.index.locate(pseudonym(self.key, user_id, k), ()))
        if remedy == "remove":
            for ds, loc in self.index.locate(pseudonym(self.key, user_id, epoch), ()).items():
                if loc["users"] or loc["authored"] or loc["media"]:
                    bad.add(ds)
        return sorted(ds for ds in bad if ds in head["datasets"])

    def export(self, name: str, variant: str, to_dir: Path, version: int | None = None) -> list[Path]:
        """Write a release's files of one variant plus manifest.json into to_dir."""
        if variant not in ("hashed", "unhashed"):
            raise UnknownFile(f"variant must be hashed or unhashed, not {variant!r}")
        return export_release(self.manifest(name, version), self.store.blobs, variant, Path(to_dir))

    def verify(self, name: str, version: int | None = None, progress: bool = False) -> VerifyReport:
        """Full scan of a release: checksums, sizes, parseability, row counts."""
        problems, files, nbytes = full_scan(self.manifest(name, version), self.store.blobs, progress)
        return VerifyReport(not problems, problems, files, nbytes)

    # -- index --------------------------------------------------------------
    def _sync_index(self, head: dict, progress: bool = False, only_stale: bool = True) -> None:
        stale = self.index.stale(head) if only_stale else list(set(head["datasets"]) | set(self.index.indexed()))
        for ds in stale:
            if ds not in head["datasets"]:
                self.index.conn.execute("BEGIN IMMEDIATE")
                self.index.drop_dataset(ds)
                self.index.conn.execute("COMMIT")
                continue
            v, sha = self._manifest_sha(head, ds, None)
            if only_stale and self._fetch_index(ds, v, sha):
                continue
            self.index.rebuild_dataset(ds, v, sha, self.store.get_json(sha), self.store.blobs, progress)
            self._share_index(ds, sha)

    def _share_index(self, dataset: str, manifest_sha: str) -> None:
        """Publish this process's index of a dataset at a release, when the store keeps snapshots (S3):
        other machines then fetch it instead of re-scanning the files."""
        if not self.store.remote:
            return
        with self.store.staging() as staging:
            snap = staging / "index.sqlite"
            if self.index.export_dataset(dataset, manifest_sha, snap):
                self.store.put_index_snapshot(manifest_sha, snap)

    def _fetch_index(self, dataset: str, version: int, manifest_sha: str) -> bool:
        """Take a dataset's index at a release from the store's snapshot; False when it has none."""
        if not self.store.remote:
            return False
        with self.store.staging() as staging:
            snap = staging / "index.sqlite"
            if not self.store.get_index_snapshot(manifest_sha, snap):
                return False
            self.index.merge_from(snap, dataset, version, manifest_sha)
            return True

    def reindex(self, progress: bool = False) -> None:
        """Rebuild the account index of every dataset from the current releases."""
        self._sync_index(self.store.read_head(), progress, only_stale=False)

    def footprint(self, user_id: str) -> list[FootprintEntry]:
        """Where the account appears in current releases, from the index."""
        head = self.store.read_head()
        self._sync_index(head)
        _, st = self._account(self._state(head), user_id)
        identity = st["current"] if st else user_id
        out = []
        for ds, loc in sorted(self.index.locate(identity).items()):
            if ds not in head["datasets"]:
                continue
            if loc["followers"] is not None:
                hashed = is_hashed(loc["followers"]) or st is not None
            else:
                hashed = st is not None  # corrected: a pseudonym in both variants
            files = sorted(set(loc["files"]) | {hashed_file_name(f) for f in loc["files"]})
            out.append(FootprintEntry(ds, head["datasets"][ds]["current"], loc["authored"], loc["users"] > 0,
                                      loc["ref"] + loc["handles"] - loc["both"], hashed, files))
        return out

    def release_id(self, dataset: str) -> str:
        """The current release of `dataset` as the sha256 of its manifest: releases never change, so
        anything derived from one (a reviewer's activity summary, say) can be kept under this id."""
        return self._manifest_sha(self.store.read_head(), dataset, None)[1]

    def samples(self, user_id: str, dataset: str, limit: int = 5, variants=("hashed", "unhashed")) -> dict:
        """Up to `limit` authored and referring rows (and the profile row) per variant, as published."""
        head = self.store.read_head()
        v, sha = self._manifest_sha(head, dataset, None)
        self._sync_index(head)
        _, st = self._account(self._state(head), user_id)
        epoch = st["epoch"] if st else 0
        identity = st["current"] if st else user_id
        ps = tuple(pseudonym(self.key, user_id, k) for k in range(epoch + 1))
        ids = frozenset({user_id, identity, *ps})
        fix = Corrector([Target(user_id, "rehash", ids, frozenset(self.index.screen_names(identity)), ps, "\0")])
        files = self.index.locate(identity).get(dataset, {}).get("files", set())
        out = {}
        for variant in variants:
            res = {"profile": None, "authored": [], "referring": []}
            for e in self.store.get_json(sha)["files"]:
                unh = e["path"] if variant == "unhashed" else None
                if e["variant"] != variant or e["kind"] == "media":
                    continue
                if variant == "hashed":
                    unh = next((f for f in files if hashed_file_name(f) == e["path"]), None)
                if unh not in files:
                    continue
                concerned = []  # every record the batch would change: the account's own and referring ones

                need = [limit - len(res["authored"]), limit - len(res["referring"])]

                def keep(fields, cols, _new, _tweets=e["kind"] == "tweets"):
                    concerned.append((fields, cols))
                    need[0 if fields[cols["userid"]] in ids else 1] -= 1
                    if _tweets and need[0] <= 0 and need[1] <= 0:
                        raise _Enough  # both kinds full: the rest of this tweets file cannot add a row

                try:
                    rewrite_csv(self.store.blobs.map(e["sha256"]), None, fix, keep)
                except _Enough:
                    pass
                for fields, cols in concerned:
                    row = {n: fields[i] for n, i in cols.items()}
                    if fields[cols["userid"]] in ids:
                        if e["kind"] == "users":
                            res["profile"] = row
                        elif len(res["authored"]) < limit:
                            res["authored"].append(row)
                    elif e["kind"] == "tweets" and len(res["referring"]) < limit:
                        res["referring"].append(row)
            out[variant] = res
        return out

    # -- corrections ----------------------------------------------------------
    def batch_result(self, batch_id: str) -> CorrectionResult | None:
        """The result of an already-published batch (already_applied=True), or None."""
        sha = self.store.read_head()["batches"].get(batch_id)
        if sha is None:
            return None
        d = self.store.get_json(sha)
        d["noop"] = [tuple(x) for x in d["noop"]]
        d["already_applied"] = True
        return CorrectionResult(**d)

    def _prepare(self, head: dict, items, screen_names: dict[str, str] | None = None):
        """Validate items; return (prepared targets, noop list, state).

        `screen_names` (user id -> screen name, from the platform's account directory) is
        used for accounts whose screen name the data never shows (only referred to).
        """
        if not isinstance(items, (list, tuple)) or not items:
            raise BadCorrection("a batch needs at least one (user_id, action) item")
        screen_names = dict(screen_names or {})
        for uid, sn in screen_names.items():
            if not (isinstance(uid, str) and isinstance(sn, str) and SCREEN_NAME_RE.fullmatch(sn)):
                raise BadCorrection(f"bad screen name {sn!r} for {uid!r}: expected letters, digits and _")
        seen = set()
        for it in items:
            if not (isinstance(it, (list, tuple)) and len(it) == 2 and isinstance(it[0], str) and it[0].strip()):
                raise BadCorrection(f"bad item {it!r}: expected (user_id, 'remove'|'rehash')")
            if it[1] not in ACTIONS:
                raise BadCorrection(f"bad action {it[1]!r} for {it[0]}: expected 'remove' or 'rehash'")
            if it[0] in seen:
                raise BadCorrection(f"user {it[0]} appears twice in the batch")
            seen.add(it[0])
        self._sync_index(head)
        state = self._state(head)
        targets, noop = [], []
        for uid, action in items:
            digest, st = self._account(state, uid)
            # After a revoked decision, later imports publish the raw id again beside the pseudonym.
            raw = self.index.locate(uid) if st else {}
            if st and st["removed"] and not raw:
                noop.append((uid, "already removed" if action == "remove" else "removed earlier: nothing left to re-hash"))
                continue
            identity = st["current"] if st else uid
            # The data's own spellings win; the directory's name only fills a gap.
            names = self.index.screen_names(identity) or ({screen_names[uid].lower()} if uid in screen_names else set())
            loc = {ds: l for ds, l in self.index.locate(identity, names).items() if ds in head["datasets"]}
            for ds, l in raw.items():
                if ds in head["datasets"]:
                    loc.setdefault(ds, {"files": set()})["files"] |= l["files"]
            names = names | (self.index.screen_names(uid) if raw else set())
            if not loc:
                noop.append((uid, "no rows of or references to this account in any current release"))
                continue
            epoch = st["epoch"] if st else 0
            ps = tuple(pseudonym(self.key, uid, k) for k in range(epoch + 1))
            t = Target(uid, action, frozenset({uid, identity, *ps}), frozenset(names),
                       ps, pseudonym(self.key, uid, epoch + 1))
            targets.append(PreparedTarget(t, loc, digest, epoch))
        return targets, noop, state

    def _touched(self, head, targets: list[PreparedTarget]) -> dict[str, TouchedDataset]:
        """dataset -> its current release and the names of the files to rewrite in both variants."""
        out: dict[str, TouchedDataset] = {}
        for p in targets:
            for ds, l in p.locations.items():
                if ds not in out:
                    v, sha = self._manifest_sha(head, ds, None)
                    out[ds] = TouchedDataset(v, sha, self.store.get_json(sha))
                out[ds].names.update(l["files"])
                out[ds].names.update(hashed_file_name(f) for f in l["files"])
        return out

    def plan(self, items: list[tuple[str, str]], *, screen_names: dict[str, str] | None = None) -> CorrectionPlan:
        """What apply would change, found by a dry run over the files the index names; writes nothing."""
        head = self.store.read_head()
        targets, noop, _ = self._prepare(head, items, screen_names)
        fix = Corrector([p.target for p in targets])
        datasets = {}
        for ds, touched in sorted(self._touched(head, targets).items()):
            d = {"hashed": {"rows_removed": 0, "rows_rewritten": 0, "files": []},
                 "unhashed": {"rows_removed": 0, "rows_rewritten": 0, "files": []}, "media_members": 0}
            for e in touched.manifest["files"]:
                if e["path"] not in touched.names:
                    continue
                if e["kind"] == "media":
                    ch = scan_zip(self.store.blobs.local_path(e["sha256"]), fix.member, fix.cs_needles)
                    if e["variant"] == "unhashed":
                        d["media_members"] += ch.rows_removed + ch.rows_rewritten
                else:
                    ch = rewrite_csv(self.store.blobs.map(e["sha256"]), None, fix)
                    d[e["variant"]]["rows_removed"] += ch.rows_removed
                    d[e["variant"]]["rows_rewritten"] += ch.rows_rewritten
                if ch.edits:
                    d[e["variant"]]["files"].append(e["path"])
            datasets[ds] = d
        return CorrectionPlan([tuple(i) for i in items], datasets, noop)

    # -- applying a batch: plan, rewrite each file, verify the set, commit in one write -----------
    def apply(self, batch_id: str, items: list[tuple[str, str]], reason: str = "", progress: bool = False,
              fence: int | None = None, *, screen_names: dict[str, str] | None = None) -> CorrectionResult:
        """Correct the accounts across every dataset, verify, and publish all new releases in one swap.

        `reason` is accepted for the caller's records but never stored: manifests are public.
        `screen_names` (user id -> screen name from the platform's account directory) gives the
        @handle of accounts the data only refers to; it is replaced and verified like a known one.
        Files are rewritten here, one thread per core; workers.jobs fans the same steps out as one
        job per file (plan_batch, rewrite_task, commit_batch) when the store is shared.
        """
        plan = self.plan_batch(batch_id, items, fence, screen_names=screen_names)
        if isinstance(plan, CorrectionResult):
            return plan
        with self.store.staging() as staging:
            faults.checkpoint("before_rewrite")
            outcomes, staged = self._rewrite_threaded(plan, staging, progress)
            return self._commit(plan, outcomes, staged, staging)

    def plan_batch(self, batch_id: str, items, fence: int | None = None, *,
                   screen_names: dict[str, str] | None = None) -> BatchPlan | CorrectionResult:
        """Step 1: validate the batch against the current HEAD and list the files to rewrite; a batch
        already published returns its result instead (exactly once)."""
        started = time.time()
        if not isinstance(batch_id, str) or not batch_id:
            raise BadCorrection("batch_id must be a non-empty string")
        done = self.batch_result(batch_id)
        if done is not None:
            return done
        head = self.store.read_head()
        if fence is not None and head.get("fence") is not None and fence < head["fence"]:
            raise PublishConflict(f"stale fence {fence}: {head['fence']} already recorded")
        targets, noop, _ = self._prepare(head, items, screen_names)
        touched = self._touched(head, targets)
        tasks = [FileTask(ds, e) for ds, t in sorted(touched.items()) for e in t.manifest["files"] if e["path"] in t.names]
        return BatchPlan(batch_id, fence, head.get("state"), targets, noop, touched, tasks, started)

    def save_plan(self, plan: BatchPlan) -> str:
        """Store a plan as a blob for the file and commit jobs; return its id."""
        with self.store.staging() as staging:
            staged = self.store.stage_json(plan.to_doc(), staging)
            self.store.blobs.put_many([staged])
        return staged[1]

    def load_plan(self, plan_id: str) -> BatchPlan:
        """A plan saved by save_plan."""
        return BatchPlan.from_doc(self.store.get_json(plan_id), self.store.get_json)

    def rewrite_task(self, plan: BatchPlan, index: int, rules: tuple | None = None) -> FileOutcome:
        """Step 2, one file (a file job): rewrite and check it, store the result under its content address.

        `rules` is (plan.corrector(), plan.forbidden()) when the caller keeps them across the plan's files
        (building the Corrector compiles its needle search)."""
        task = plan.tasks[index]
        fix, fb = rules or (plan.corrector(), plan.forbidden())
        with self.store.staging() as staging:
            out = staging / "out"
            outcome, w = self._rewrite_file(fix, fb, task, out)
            try:
                w.close()
            except BaseException:
                w.abort()
                raise
            if outcome.changed:
                self.store.blobs.put_many([(out, outcome.new_entry["sha256"])])
        if getattr(self.store.blobs, "remote", False):
            self.store.blobs.forget(task.entry["sha256"])  # the worker's cache keeps no finished source
        return outcome

    def commit_batch(self, plan: BatchPlan, outcomes: list[FileOutcome]) -> CorrectionResult:
        """Step 3 (the commit job): check that every task has its outcome and every new file is stored,
        verify the set, and publish the new releases in one conditional write."""
        if sorted(o.task.key for o in outcomes) != sorted(t.key for t in plan.tasks):
            raise VerificationFailed("the file outcomes do not match the batch's files")
        missing = [o.task.label for o in outcomes if o.changed and not self.store.blobs.exists(o.new_entry["sha256"])]
        if missing:
            raise VerificationFailed(f"rewritten files missing from the store: {', '.join(missing[:5])}")
        with self.store.staging() as staging:
            return self._commit(plan, outcomes, [], staging)

    def _rewrite_threaded(self, plan: BatchPlan, staging: Path, progress: bool):
        """Step 2, every file here: in parallel, largest first, one thread per core; return the outcomes
        and the (file, sha256) of the changed ones, fsynced, for the commit to store."""
        fix, fb = plan.corrector(), plan.forbidden()
        # Every output file is created before the first is written: creating a file while an
        # earlier one is fsynced waits for the filesystem journal.
        paths = [staging / task.key for task in plan.tasks]
        for p in paths:
            p.touch()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=sum(t.entry["bytes"] for t in plan.tasks), unit="B", unit_scale=True,
                       desc=f"correct {plan.batch_id}", leave=False)
        # Hashing, the needle search and the writes all run without the GIL, and every file is at
        # least as costly to hash as to search and write, so whole files balance the cores best.
        # A media archive's check reads every member's metadata in Python, holding the GIL: each archive
        # is started beside a large file's hashing, not left to the end where the checks queue for it.
        # This thread fsyncs each file as it is done, so no rewriting thread waits for the disk.
        outcomes: list = [None] * len(plan.tasks)
        order = _gil_aware_order([t.entry for t in plan.tasks])
        with ThreadPoolExecutor(max_workers=max(1, min(len(plan.tasks), os.cpu_count() or 1))) as pool:
            futures = {pool.submit(self._rewrite_file, fix, fb, plan.tasks[i], paths[i]): i for i in order}
            try:
                for n, fut in enumerate(as_completed(futures)):
                    i = futures[fut]
                    outcome, w = fut.result()
                    w.close()
                    outcomes[i] = outcome
                    if bar:
                        bar.update(plan.tasks[i].entry["bytes"])
                    if n == 0:
                        faults.checkpoint("mid_rewrite")
            except BaseException:
                for fut in futures:
                    fut.cancel()  # files not started yet are not started
                wait(futures)  # running ones finish; then every file written is closed unsynced
                for fut in futures:
                    if not fut.cancelled() and fut.exception() is None:
                        fut.result()[1].abort()
                raise
        if bar:
            bar.close()
        staged = [(p, o.new_entry["sha256"]) for p, o in zip(paths, outcomes) if o.changed]
        return outcomes, staged

    def _commit(self, plan: BatchPlan, outcomes: list[FileOutcome], staged: list, staging: Path) -> CorrectionResult:
        """Step 3: verify the set, write the manifests, state and result, and swap HEAD once."""
        self._verify_outcomes(outcomes)
        faults.checkpoint("after_verify")
        rs = self._releases(plan, outcomes)
        staged = list(staged)
        msha_new = {}
        for ds, m in rs.manifests.items():
            staged.append(self.store.stage_json(m, staging))
            msha_new[ds] = staged[-1][1]
        state_sha = plan.state_ref
        if plan.targets:
            new_state = dict(self.store.get_json(plan.state_ref)["accounts"] if plan.state_ref else {})
            for p in plan.targets:
                new_state[p.digest] = {"epoch": p.epoch + 1, "removed": p.target.action == "remove", "current": p.target.new}
            staged.append(self.store.stage_state(new_state, staging))
            state_sha = staged[-1][1]
        result = CorrectionResult(plan.batch_id, rs.releases, False, plan.noop, rs.bytes_written, rs.files,
                                  rs.rows_removed, rs.rows_rewritten, round(time.time() - plan.started_at, 3))
        staged.append(self.store.stage_json(dataclasses.asdict(result), staging))
        result_sha = staged[-1][1]
        self.store.blobs.put_many(staged)
        faults.checkpoint("mid_publish")
        parents = {ds: (plan.touched[ds].version, plan.touched[ds].manifest_sha) for ds in rs.releases}
        fence, batch_id = plan.fence, plan.batch_id

        def update(cur: dict) -> dict:
            if batch_id in cur["batches"]:
                raise _AlreadyPublished()
            for ds, (v, sha) in parents.items():
                e = cur["datasets"].get(ds)
                if e is None or e["current"] != v or e["versions"][str(v)] != sha:
                    raise PublishConflict(f"dataset {ds} changed since this batch read it")
            if cur.get("state") != plan.state_ref:
                raise PublishConflict("account state changed since this batch read it")
            if fence is not None and cur.get("fence") is not None and fence < cur["fence"]:
                raise PublishConflict(f"stale fence {fence}: {cur['fence']} already recorded")
            for ds, nv in rs.releases.items():
                cur["datasets"][ds]["versions"][str(nv)] = msha_new[ds]
                cur["datasets"][ds]["current"] = nv
            cur["state"] = state_sha
            cur["batches"][batch_id] = result_sha
            if fence is not None:
                cur["fence"] = max(fence, cur.get("fence") or fence)
            return cur

        try:
            self.store.publish(update)
        except _AlreadyPublished:
            return self.batch_result(batch_id)
        faults.checkpoint("after_publish")
        for ds in rs.releases:
            deltas = [d for o in outcomes if o.task.dataset == ds for d in o.deltas]
            if self.index.apply_deltas(ds, parents[ds], (rs.releases[ds], msha_new[ds]),
                                       lambda buf, _dl=deltas: [buf.add(f, c, s) for f, c, s in _dl]):
                self._share_index(ds, msha_new[ds])
        return result

    def _releases(self, plan: BatchPlan, outcomes: list[FileOutcome]) -> ReleaseSet:
        """The new release of every dataset where something changed (an index false positive changes nothing)."""
        rs = ReleaseSet()
        for ds in sorted({o.task.dataset for o in outcomes if o.changed}):
            parent = plan.touched[ds]
            m = parent.manifest
            mine = [o for o in outcomes if o.task.dataset == ds and o.changed]
            csv_un = [o for o in mine if o.task.entry["variant"] == "unhashed" and o.task.entry["kind"] != "media"]
            users = [o for o in csv_un if o.task.entry["kind"] == "users"]
            summary = {
                "accounts_removed": sum(o.rows_removed for o in users),
                "accounts_rehashed": sum(o.rows_rewritten for o in users),
                "rows_removed": sum(o.rows_removed for o in csv_un),
                "rows_rewritten": sum(o.rows_rewritten for o in csv_un),
                "files_changed": len(mine),
            }
            # A file rewritten without edits keeps sharing the parent's blob.
            rewritten = {(o.task.entry["variant"], o.task.entry["path"]): o.new_entry for o in mine}
            rs.manifests[ds] = {
                "dataset": ds, "version": parent.version + 1, "parent_version": parent.version,
                "created_at": utcnow(), "key_id": self.key_id, "batch_id": plan.batch_id,
                "accounts": m["accounts"] - summary["accounts_removed"],
                "tweets": m["tweets"] - sum(o.rows_removed for o in csv_un if o.task.entry["kind"] == "tweets"),
                "summary": summary,
                "files": [dict(rewritten.get((e["variant"], e["path"]), e)) for e in m["files"]],
            }
            rs.releases[ds] = parent.version + 1
            rs.bytes_written += sum(o.new_entry["bytes"] for o in mine)
            rs.files += len(mine)
            rs.rows_removed += summary["rows_removed"]
            rs.rows_rewritten += summary["rows_rewritten"]
        return rs

    def _rewrite_file(self, fix: Corrector, fb: Forbidden, task: FileTask, out_path: Path):
        """Rewrite and check one file of a correction into out_path (runs in a pool thread or a file job);
        return (its FileOutcome, its writer, still to be closed: the caller fsyncs it)."""
        e = task.entry
        dl = []  # (file, index contributions, +1 | -1) of the unhashed variant: the index follows it
        w = HashingWriter(out_path)
        try:
            if e["kind"] == "media":
                parent = self.store.blobs.local_path(e["sha256"])
                ch = write_zip(parent, w, fix.member, fix.cs_needles)
                sha = w.finish()
                problems = verify_zip_rewrite(parent, out_path, ch.edits, fb, task.label)  # read back
                if e["variant"] == "unhashed":
                    for old, new in ch.edits:
                        dl.append((e["path"], contributions("media", old), -1))
                        if new is not None:
                            dl.append((e["path"], contributions("media", new), 1))
            else:
                src = self.store.blobs.map(e["sha256"])
                check = RewriteCheck(fb, csvio.header(src)[1], task.label)  # rides along with the rewrite

                def on_change(old, cols, new, _f=e["path"], _k=e["kind"]):
                    dl.append((_f, contributions(_k, old, cols), -1))
                    if new is not None:
                        dl.append((_f, contributions(_k, new, cols), 1))

                # Only the unhashed variant's changes move the index (it counts raw ids and names).
                ch = rewrite_csv(src, w, fix, on_change if e["variant"] == "unhashed" else None, check)
                sha = w.finish()
                problems = check.problems
        except BaseException:
            w.abort()
            raise
        new_e = dict(e, sha256=sha, bytes=w.bytes, rows=e["rows"] - ch.rows_removed)
        dropped = sum(1 for x in ch.edits if x[-1] is None)
        return FileOutcome(task, new_e, ch.rows_removed, ch.rows_rewritten, len(ch.edits), dropped,
                           list(problems), dl), w

    def _verify_outcomes(self, outcomes: list[FileOutcome]) -> None:
        """Collect the checks of every rewritten file (done as it was written: verify.RewriteCheck for
        CSV, verify_zip_rewrite for zips) and the row-count rules; raise VerificationFailed on any problem."""
        problems = []
        counts = {}
        for o in outcomes:
            e = o.task.entry
            pair = (o.task.dataset, e["path"] if e["variant"] == "hashed" else hashed_file_name(e["path"]))
            counts.setdefault(pair, []).append((o.rows_removed, o.rows_rewritten))
            problems += o.problems
            if o.new_entry["rows"] != e["rows"] - o.dropped:
                problems.append(f"{o.task.label}: {o.new_entry['rows']} rows, expected {e['rows']} - {o.dropped}")
        for key, pairs in counts.items():
            if len(set(pairs)) > 1:
                problems.append(f"{key[0]} {key[1]}: hashed and unhashed variants changed different rows {pairs}")
        if problems:
            more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
            raise VerificationFailed("; ".join(problems[:20]) + more)
