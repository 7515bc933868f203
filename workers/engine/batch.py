"""Typed records of one correction batch: its plan, its file tasks and their outcomes, as JSON documents too.

The plan and the outcomes travel between processes when a correction is fanned out per file
(one job per file, then a commit job), so each record has to_doc()/from_doc().
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .correct import Corrector, Target
from .verify import Forbidden


@dataclass(frozen=True)
class PreparedTarget:
    """One account of the batch with where the index finds it and its state before the batch."""

    target: Target
    locations: dict  # dataset -> the index's location record of the account
    digest: str  # the account's key in the account state
    epoch: int  # its pseudonym epoch before the batch

    def to_doc(self) -> dict:
        t = self.target
        return {"user_id": t.user_id, "action": t.action, "old_ids": sorted(t.old_ids),
                "screen_names": sorted(t.screen_names), "old_pseudonyms": list(t.old_pseudonyms), "new": t.new,
                "datasets": sorted(self.locations), "digest": self.digest, "epoch": self.epoch}

    @classmethod
    def from_doc(cls, d: dict) -> "PreparedTarget":
        t = Target(d["user_id"], d["action"], frozenset(d["old_ids"]), frozenset(d["screen_names"]),
                   tuple(d["old_pseudonyms"]), d["new"])
        return cls(t, {ds: None for ds in d["datasets"]}, d["digest"], d["epoch"])


@dataclass
class TouchedDataset:
    """A dataset the batch touches: its current release and the files (both variants) to rewrite."""

    version: int
    manifest_sha: str
    manifest: dict
    names: set = field(default_factory=set)


@dataclass(frozen=True)
class FileTask:
    """One file to rewrite: the dataset and the file's entry in the parent manifest."""

    dataset: str
    entry: dict

    @property
    def key(self) -> str:
        """A stable name of the task, unique within its batch."""
        return f"{self.dataset}.{self.entry['variant']}.{self.entry['path']}"

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.entry['variant']}/{self.entry['path']}"


@dataclass
class BatchPlan:
    """Everything decided before any file is written: targets, untouched ones (noop), touched releases."""

    batch_id: str
    fence: int | None
    state_ref: str | None  # the account state blob HEAD named when the batch was planned
    targets: list[PreparedTarget]
    noop: list[tuple[str, str]]
    touched: dict[str, TouchedDataset]
    tasks: list[FileTask]
    started_at: float  # wall clock (time.time) when planning started: the result's duration

    def corrector(self) -> Corrector:
        """The rewriting rules of the batch."""
        return Corrector([p.target for p in self.targets])

    def forbidden(self) -> Forbidden:
        """What must appear nowhere after the batch, built from the targets independently of the Corrector."""
        ts = [p.target for p in self.targets]
        return Forbidden(
            ids=frozenset(x for t in ts for x in t.old_ids),
            pseudonyms=frozenset(p for t in ts for p in t.old_pseudonyms),
            screen_names=frozenset(s.lower() for t in ts for s in t.screen_names),
            removed_ids=frozenset(x for t in ts if t.action == "remove" for x in (*t.old_ids, t.new)),
        )

    def to_doc(self) -> dict:
        return {"batch_id": self.batch_id, "fence": self.fence, "state_ref": self.state_ref,
                "targets": [p.to_doc() for p in self.targets], "noop": [list(n) for n in self.noop],
                "touched": {ds: {"version": t.version, "manifest_sha": t.manifest_sha, "names": sorted(t.names)}
                            for ds, t in self.touched.items()},
                "tasks": [{"dataset": t.dataset, "entry": t.entry} for t in self.tasks],
                "started_at": self.started_at}

    @classmethod
    def from_doc(cls, d: dict, get_json) -> "BatchPlan":
        """Rebuild a plan; get_json(sha) loads the parent manifests from the store."""
        touched = {ds: TouchedDataset(t["version"], t["manifest_sha"], get_json(t["manifest_sha"]), set(t["names"]))
                   for ds, t in d["touched"].items()}
        return cls(d["batch_id"], d["fence"], d["state_ref"], [PreparedTarget.from_doc(x) for x in d["targets"]],
                   [tuple(n) for n in d["noop"]], touched, [FileTask(t["dataset"], t["entry"]) for t in d["tasks"]],
                   d["started_at"])


@dataclass
class FileOutcome:
    """What rewriting one file gave: the new manifest entry, the counts, the checks' findings, index deltas."""

    task: FileTask
    new_entry: dict
    rows_removed: int
    rows_rewritten: int
    edits: int  # records (or zip members) changed or dropped
    dropped: int  # of which dropped
    problems: list[str]
    deltas: list  # (file, contributions, +1 | -1) of the unhashed variant: the index follows it

    @property
    def changed(self) -> bool:
        """False for an index false positive: the file keeps sharing the parent's blob."""
        return self.edits > 0

    def to_doc(self) -> dict:
        return {"dataset": self.task.dataset, "entry": self.task.entry, "new_entry": self.new_entry,
                "rows_removed": self.rows_removed, "rows_rewritten": self.rows_rewritten, "edits": self.edits,
                "dropped": self.dropped, "problems": self.problems,
                "deltas": [[f, [list(c) for c in contribs], sign] for f, contribs, sign in self.deltas]}

    @classmethod
    def from_doc(cls, d: dict) -> "FileOutcome":
        deltas = [(f, [tuple(c) for c in contribs], sign) for f, contribs, sign in d["deltas"]]
        return cls(FileTask(d["dataset"], d["entry"]), d["new_entry"], d["rows_removed"], d["rows_rewritten"],
                   d["edits"], d["dropped"], list(d["problems"]), deltas)


@dataclass
class ReleaseSet:
    """The new releases a batch publishes: one manifest per changed dataset, and the totals."""

    manifests: dict[str, dict] = field(default_factory=dict)
    releases: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    files: int = 0
    rows_removed: int = 0
    rows_rewritten: int = 0
