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
from .store import HashingWriter, Store
from .verify import Forbidden, RewriteCheck, full_scan, verify_zip_rewrite

__all__ = [
    "Engine", "FileInfo", "VersionInfo", "DatasetInfo", "FootprintEntry", "CorrectionPlan",
    "CorrectionResult", "VerifyReport", "EngineError", "UnknownDataset", "UnknownVersion",
    "UnknownFile", "ImportFailed", "VerificationFailed", "PublishConflict", "BadCorrection",
]

ACTIONS = ("remove", "rehash")
SCREEN_NAME_RE = re.compile(rf"[{HANDLE_CHARS}]+")  # a whole handle, as handles.py defines it


class _AlreadyPublished(Exception):
    pass


class Engine:
    """All dataset operations over one data dir, with one hashing key."""

    def __init__(self, data_dir: Path, hash_key: bytes, key_id: str):
        self.data_dir = Path(data_dir)
        self.key = hash_key
        self.key_id = key_id
        self.store = Store(self.data_dir)
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
            self.index.rebuild_dataset(ds, v, sha, self.store.get_json(sha), self.store.blobs, progress)

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

    def samples(self, user_id: str, dataset: str, limit: int = 5) -> dict:
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
        for variant in ("hashed", "unhashed"):
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
                rewrite_csv(self.store.blobs.map(e["sha256"]), None, fix,
                            lambda fields, cols, _new: concerned.append((fields, cols)))
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
        """Validate items; return (targets with their index locations, noop list, state).

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
            targets.append((t, loc, digest, epoch))
        return targets, noop, state

    def _touched(self, head, targets) -> dict[str, tuple[int, str, dict, set]]:
        """dataset -> (version, manifest sha, manifest, names of files to rewrite in both variants)."""
        out = {}
        for _, loc, _, _ in targets:
            for ds, l in loc.items():
                if ds not in out:
                    v, sha = self._manifest_sha(head, ds, None)
                    out[ds] = (v, sha, self.store.get_json(sha), set())
                out[ds][3].update(l["files"])
                out[ds][3].update(hashed_file_name(f) for f in l["files"])
        return out

    def plan(self, items: list[tuple[str, str]], *, screen_names: dict[str, str] | None = None) -> CorrectionPlan:
        """What apply would change, found by a dry run over the files the index names; writes nothing."""
        head = self.store.read_head()
        targets, noop, _ = self._prepare(head, items, screen_names)
        fix = Corrector([t for t, _, _, _ in targets])
        datasets = {}
        for ds, (_, _, m, names) in sorted(self._touched(head, targets).items()):
            d = {"hashed": {"rows_removed": 0, "rows_rewritten": 0, "files": []},
                 "unhashed": {"rows_removed": 0, "rows_rewritten": 0, "files": []}, "media_members": 0}
            for e in m["files"]:
                if e["path"] not in names:
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

    def apply(self, batch_id: str, items: list[tuple[str, str]], reason: str = "", progress: bool = False,
              fence: int | None = None, *, screen_names: dict[str, str] | None = None) -> CorrectionResult:
        """Correct the accounts across every dataset, verify, and publish all new releases in one swap.

        `reason` is accepted for the caller's records but never stored: manifests are public.
        `screen_names` (user id -> screen name from the platform's account directory) gives the
        @handle of accounts the data only refers to; it is replaced and verified like a known one.
        """
        t0 = time.monotonic()
        if not isinstance(batch_id, str) or not batch_id:
            raise BadCorrection("batch_id must be a non-empty string")
        done = self.batch_result(batch_id)
        if done is not None:
            return done
        head = self.store.read_head()
        if fence is not None and head.get("fence") is not None and fence < head["fence"]:
            raise PublishConflict(f"stale fence {fence}: {head['fence']} already recorded")
        targets, noop, state = self._prepare(head, items, screen_names)
        fix = Corrector([t for t, _, _, _ in targets])
        fb = self._forbidden(targets)
        touched = self._touched(head, targets)
        with self.store.staging() as staging:
            faults.checkpoint("before_rewrite")
            # Every output file is created before the first is written: creating a file while an
            # earlier one is fsynced waits for the filesystem journal.
            work = []  # (dataset, parent entry, output path)
            for ds, (v, msha, m, names) in sorted(touched.items()):
                for e in m["files"]:
                    if e["path"] in names:
                        work.append((ds, e, staging / f"{ds}.{e['variant']}.{e['path']}"))
                        work[-1][2].touch()
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=sum(e["bytes"] for _, e, _ in work), unit="B", unit_scale=True,
                           desc=f"correct {batch_id}", leave=False)
            # Files are rewritten in parallel, largest first, one thread per core: hashing, the needle
            # search and the writes all run without the GIL, and every file is at least as costly to
            # hash as to search and write, so whole files balance the cores best. This thread fsyncs
            # each file as it is done, so no rewriting thread waits for the disk.
            results: list = [None] * len(work)  # (change, index deltas) per work item
            order = sorted(range(len(work)), key=lambda i: -work[i][1]["bytes"])
            with ThreadPoolExecutor(max_workers=max(1, min(len(work), os.cpu_count() or 1))) as pool:
                futures = {pool.submit(self._rewrite_file, fix, fb, *work[i]): i for i in order}
                try:
                    for n, fut in enumerate(as_completed(futures)):
                        i = futures[fut]
                        change, dl, w = fut.result()
                        w.close()
                        results[i] = change, dl
                        if bar:
                            bar.update(work[i][1]["bytes"])
                        if n == 0:
                            faults.checkpoint("mid_rewrite")
                except BaseException:
                    for fut in futures:
                        fut.cancel()  # files not started yet are not started
                    wait(futures)  # running ones finish; then every file written is closed unsynced
                    for fut in futures:
                        if not fut.cancelled() and fut.exception() is None:
                            fut.result()[2].abort()
                    raise
            if bar:
                bar.close()
            # Every rewritten file is on disk before it is verified and published.
            changes = [c for c, _ in results]  # (dataset, parent entry, new path, FileChange, new entry, problems)
            deltas: dict[str, list] = {}
            for (ds, _, _), (_, dl) in zip(work, results):
                deltas.setdefault(ds, []).extend(dl)

            self._verify_changes(changes)
            faults.checkpoint("after_verify")

            # Datasets where nothing changed after all (index false positive) get no release.
            changed = {ds for ds, _, _, ch, _, _ in changes if ch.edits}
            releases, manifests = {}, {}
            totals = {"bytes": 0, "files": 0, "removed": 0, "rewritten": 0}
            for ds in sorted(changed):
                v, msha, m, _ = touched[ds]
                mine = [c for c in changes if c[0] == ds and c[3].edits]
                csv_un = [c for c in mine if c[1]["variant"] == "unhashed" and c[1]["kind"] != "media"]
                summary = {
                    "accounts_removed": sum(c[3].rows_removed for c in csv_un if c[1]["kind"] == "users"),
                    "accounts_rehashed": sum(c[3].rows_rewritten for c in csv_un if c[1]["kind"] == "users"),
                    "rows_removed": sum(c[3].rows_removed for c in csv_un),
                    "rows_rewritten": sum(c[3].rows_rewritten for c in csv_un),
                    "files_changed": len(mine),
                }
                # A file rewritten without edits (index false positive) keeps sharing the parent's blob.
                rewritten = {(c[1]["variant"], c[1]["path"]): c[4] for c in mine}
                entries = [dict(rewritten.get((e["variant"], e["path"]), e)) for e in m["files"]]
                manifests[ds] = {
                    "dataset": ds, "version": v + 1, "parent_version": v, "created_at": utcnow(),
                    "key_id": self.key_id, "batch_id": batch_id,
                    "accounts": m["accounts"] - summary["accounts_removed"],
                    "tweets": m["tweets"] - sum(c[3].rows_removed for c in csv_un if c[1]["kind"] == "tweets"),
                    "summary": summary, "files": entries,
                }
                releases[ds] = v + 1
                totals["bytes"] += sum(c[4]["bytes"] for c in mine)
                totals["files"] += len(mine)
                totals["removed"] += summary["rows_removed"]
                totals["rewritten"] += summary["rows_rewritten"]
            staged = [(path, new_e["sha256"]) for ds, e, path, ch, new_e, _ in changes if ds in changed and ch.edits]
            msha_new = {}
            for ds, m in manifests.items():
                staged.append(self.store.stage_json(m, staging))
                msha_new[ds] = staged[-1][1]
            new_state = dict(state)
            for t, _, digest, epoch in targets:
                new_state[digest] = {"epoch": epoch + 1, "removed": t.action == "remove", "current": t.new}
            state_sha = head.get("state")
            if targets:
                staged.append(self.store.stage_json({"accounts": new_state}, staging))
                state_sha = staged[-1][1]
            result = CorrectionResult(batch_id, releases, False, noop, totals["bytes"], totals["files"],
                                      totals["removed"], totals["rewritten"], round(time.monotonic() - t0, 3))
            staged.append(self.store.stage_json(dataclasses.asdict(result), staging))
            result_sha = staged[-1][1]
            self.store.blobs.put_many(staged)
            faults.checkpoint("mid_publish")

            parents = {ds: touched[ds][:2] for ds in changed}

            def update(cur: dict) -> dict:
                if batch_id in cur["batches"]:
                    raise _AlreadyPublished()
                for ds, (v, sha) in parents.items():
                    e = cur["datasets"].get(ds)
                    if e is None or e["current"] != v or e["versions"][str(v)] != sha:
                        raise PublishConflict(f"dataset {ds} changed since this batch read it")
                if cur.get("state") != head.get("state"):
                    raise PublishConflict("account state changed since this batch read it")
                if fence is not None and cur.get("fence") is not None and fence < cur["fence"]:
                    raise PublishConflict(f"stale fence {fence}: {cur['fence']} already recorded")
                for ds, nv in releases.items():
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
        for ds in changed:
            v, sha = parents[ds]
            self.index.apply_deltas(ds, (v, sha), (releases[ds], msha_new[ds]),
                                    lambda buf, _dl=deltas[ds]: [buf.add(f, c, s) for f, c, s in _dl])
        return result

    def _rewrite_file(self, fix: Corrector, fb: Forbidden, ds: str, e: dict, out_path: Path):
        """Rewrite and check one file of a correction into out_path (runs in a pool thread); return
        ((dataset, parent entry, path, FileChange, new entry, problems found), index deltas, its
        writer, still to be closed: the caller fsyncs it)."""
        dl = []  # (file, index contributions, +1 | -1) of the unhashed variant: the index follows it
        label = f"{ds} {e['variant']}/{e['path']}"
        w = HashingWriter(out_path)
        try:
            if e["kind"] == "media":
                parent = self.store.blobs.local_path(e["sha256"])
                ch = write_zip(parent, w, fix.member, fix.cs_needles)
                sha = w.finish()
                problems = verify_zip_rewrite(parent, out_path, ch.edits, fb, label)  # read back
                if e["variant"] == "unhashed":
                    for old, new in ch.edits:
                        dl.append((e["path"], contributions("media", old), -1))
                        if new is not None:
                            dl.append((e["path"], contributions("media", new), 1))
            else:
                src = self.store.blobs.map(e["sha256"])
                check = RewriteCheck(fb, csvio.header(src)[1], label)  # rides along with the rewrite
                on_change = None
                if e["variant"] == "unhashed":
                    def on_change(old, cols, new, _f=e["path"], _k=e["kind"]):
                        dl.append((_f, contributions(_k, old, cols), -1))
                        if new is not None:
                            dl.append((_f, contributions(_k, new, cols), 1))
                ch = rewrite_csv(src, w, fix, on_change, check)
                sha = w.finish()
                problems = check.problems
        except BaseException:
            w.abort()
            raise
        new_e = dict(e, sha256=sha, bytes=w.bytes, rows=e["rows"] - ch.rows_removed)
        return (ds, e, out_path, ch, new_e, problems), dl, w

    @staticmethod
    def _forbidden(targets) -> Forbidden:
        """What must appear nowhere after the batch, built from the targets independently of the Corrector."""
        ts = [t for t, _, _, _ in targets]
        return Forbidden(
            ids=frozenset(x for t in ts for x in t.old_ids),
            pseudonyms=frozenset(p for t in ts for p in t.old_pseudonyms),
            screen_names=frozenset(s.lower() for t in ts for s in t.screen_names),
            removed_ids=frozenset(x for t in ts if t.action == "remove" for x in (*t.old_ids, t.new)),
        )

    def _verify_changes(self, changes) -> None:
        """Collect the checks of every rewritten file (done as it was written: verify.RewriteCheck for
        CSV, verify_zip_rewrite for zips) and the row-count rules; raise VerificationFailed on any problem."""
        problems = []
        counts = {}
        for ds, e, path, ch, new_e, file_problems in changes:
            label = f"{ds} {e['variant']}/{e['path']}"
            pair = (ds, e["path"] if e["variant"] == "hashed" else hashed_file_name(e["path"]))
            counts.setdefault(pair, []).append((ch.rows_removed, ch.rows_rewritten))
            problems += file_problems
            removed = sum(1 for x in ch.edits if x[-1] is None)
            if new_e["rows"] != e["rows"] - removed:
                problems.append(f"{label}: {new_e['rows']} rows, expected {e['rows']} - {removed}")
        for key, pairs in counts.items():
            if len(set(pairs)) > 1:
                problems.append(f"{key[0]} {key[1]}: hashed and unhashed variants changed different rows {pairs}")
        if problems:
            more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
            raise VerificationFailed("; ".join(problems[:20]) + more)
