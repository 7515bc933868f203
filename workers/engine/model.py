"""Frozen result types of the engine facade (re-exported by workers.engine.api)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileInfo:
    """One published file of a release; `path` is its archive file name."""

    variant: str
    path: str
    bytes: int
    rows: int
    sha256: str


@dataclass(frozen=True)
class VersionInfo:
    """One release of a dataset."""

    dataset: str
    version: int
    status: str  # "current" | "withdrawn"
    created_at: str
    parent_version: int | None
    key_id: str
    batch_id: str | None
    accounts: int
    tweets: int
    summary: dict
    files: list[FileInfo]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset and all its releases, ascending."""

    name: str
    current_version: int
    versions: list[VersionInfo]


@dataclass(frozen=True)
class FootprintEntry:
    """Where one account appears in the current release of one dataset.

    referring_rows counts the rows that refer to it: by id (reply, retweet, mention)
    or by @handle in the text; a row doing several of these counts once.
    """

    dataset: str
    version: int
    authored_tweets: int
    in_users_file: bool
    referring_rows: int
    hashed_publicly: bool
    files: list[str]


@dataclass(frozen=True)
class CorrectionPlan:
    """What apply would change, per dataset and variant."""

    batch_items: list[tuple[str, str]]
    datasets: dict[str, dict]
    noop: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CorrectionResult:
    """What a published correction batch did. Row counts are per variant (both variants change the same rows)."""

    batch_id: str
    releases: dict[str, int]
    already_applied: bool
    noop: list[tuple[str, str]]
    bytes_written: int
    files_rewritten: int
    rows_removed: int
    rows_rewritten: int
    duration_s: float


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a full scan of a release."""

    ok: bool
    problems: list[str]
    files_checked: int
    bytes_checked: int
