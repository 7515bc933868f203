"""Public releases and gated downloads: the catalogue, signed expiring links, the download log,
signed manifests, and the notice to earlier downloaders when a correction supersedes their copy.

Nothing here ever names an account: releases are described by counts only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from appeals import db, i18n, runtime
from appeals.db import utcnow
from appeals.i18n import gettext as _
from appeals.models import DownloadLog, DownloadNotice, DownloadRequest, Researcher
from appeals.services import dispatch, notify, policy, signing
from appeals.services.accounts import email_problem
from appeals.services.errors import Forbidden, Invalid, NotFound, ServiceError

VARIANTS = ("hashed", "unhashed")
_LINK_SALT = "appeals.download-link"
# The manifest keys and file keys published; anything else the engine adds stays private.
_MANIFEST_KEYS = ("dataset", "version", "parent_version", "created_at", "key_id", "summary", "files")
_FILE_KEYS = ("variant", "path", "bytes", "rows", "sha256")
_SUMMARY_KEYS = ("accounts_removed", "accounts_rehashed", "rows_removed", "rows_rewritten", "files_changed")


class ReleaseWithdrawn(ServiceError):
    """The release was withdrawn (superseded by a correction): 410 Gone, pointing at the current one."""

    status = 410
    code = "gone"

    def __init__(self, dataset: str, version: int, current_version: int):
        super().__init__(
            _("Version %(version)s of %(dataset)s was withdrawn and replaced by version %(current)s. "
              "Please download the current version instead.", version=version, dataset=dataset, current=current_version)
        )
        self.dataset = dataset
        self.version = version
        self.current_version = current_version
        self.current_path = release_path(dataset, current_version)


@dataclass(frozen=True)
class Link:
    """A signed, expiring download link to one file of one release."""

    path: str  # the file name, as in the manifest
    variant: str
    bytes: int
    sha256: str
    relative_url: str  # for pages on this site
    url: str  # absolute, for email and the API
    expires_at: datetime


@dataclass(frozen=True)
class LinkGrant:
    """The links given to one download request."""

    request_id: int
    email: str
    dataset: str
    version: int
    variant: str
    expires_at: datetime
    links: list[Link]  # the links this request may SHOW; empty when they go by email only
    emailed: bool = True


@dataclass(frozen=True)
class FileToServe:
    """A file a link has unlocked: where it is on disk and the name to give it."""

    local_path: Path
    filename: str


# --- the catalogue ---------------------------------------------------------------------------


def _engine():
    from workers.engine import errors as engine_errors

    return runtime.engine(), engine_errors


def release_path(dataset: str, version: int) -> str:
    """Site-relative URL of a release page (the one place its shape is spelled outside the views)."""
    return f"/datasets/{quote(dataset, safe='')}/releases/{int(version)}"


def catalogue() -> list:
    """Every published dataset (DatasetInfo), by name."""
    engine, _errors = _engine()
    return sorted(engine.list_datasets(), key=lambda d: d.name)


def dataset(name: str):
    """One dataset (DatasetInfo), or NotFound."""
    engine, errors = _engine()
    try:
        return engine.get_dataset(name)
    except errors.UnknownDataset:
        raise NotFound(_("No such dataset.")) from None


def disclosed_at(info) -> str:
    """The disclosure date of a dataset: when its first release was published."""
    first = min(info.versions, key=lambda v: v.version)
    return first.created_at


def current_release(info):
    """The current VersionInfo of a dataset."""
    return next(v for v in info.versions if v.version == info.current_version)


def release(name: str, version: int | None = None):
    """(DatasetInfo, VersionInfo) of a live release; NotFound, or ReleaseWithdrawn (410)."""
    info = dataset(name)
    wanted = info.current_version if version is None else version
    found = next((v for v in info.versions if v.version == wanted), None)
    if found is None:
        raise NotFound(_("No such release."))
    if found.status == "withdrawn":
        raise ReleaseWithdrawn(info.name, found.version, info.current_version)
    return info, found


def changes(info, version) -> dict:
    """What a release changed compared with its parent, as counts only (never who)."""
    summary = version.summary or {}
    parent = next((v for v in info.versions if v.version == version.parent_version), None)
    tweets_removed = max(0, parent.tweets - version.tweets) if parent is not None else 0
    return {
        "accounts_removed": int(summary.get("accounts_removed", 0) or 0),
        "accounts_rehashed": int(summary.get("accounts_rehashed", 0) or 0),
        "tweets_removed": tweets_removed,
        "files_changed": int(summary.get("files_changed", 0) or 0),
    }


def history(name: str) -> tuple:
    """(DatasetInfo, [(VersionInfo, changes)] newest first) of a dataset."""
    info = dataset(name)
    versions = sorted(info.versions, key=lambda v: v.version, reverse=True)
    return info, [(v, changes(info, v)) for v in versions]


# --- manifests and signatures ---------------------------------------------------------------


def public_manifest(name: str, version: int) -> dict:
    """The manifest of a live release as published: counts and file digests, nothing identifying."""
    engine, _errors = _engine()
    release(name, version)  # NotFound / ReleaseWithdrawn first
    raw = engine.manifest(name, version)
    doc = {key: raw.get(key) for key in _MANIFEST_KEYS if key != "files" and key != "summary"}
    doc["summary"] = {key: int((raw.get("summary") or {}).get(key, 0) or 0) for key in _SUMMARY_KEYS}
    doc["files"] = [{key: f.get(key) for key in _FILE_KEYS} for f in raw.get("files", [])]
    return doc


def manifest_bytes(name: str, version: int) -> bytes:
    """The exact bytes served as manifest.json (stable, so a signature over them stays valid)."""
    return (json.dumps(public_manifest(name, version), sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode(
        "utf-8"
    )


def sha256sums_bytes(name: str, version: int) -> bytes:
    """A SHA256SUMS file for a live release, in the format `sha256sum -c` reads."""
    files = public_manifest(name, version)["files"]
    return "".join(f"{f['sha256']}  {f['path']}\n" for f in sorted(files, key=lambda f: f["path"])).encode("utf-8")


def signed(document: str, name: str, version: int) -> tuple[bytes, str]:
    """(bytes, base64 Ed25519 signature) of `manifest.json` or `SHA256SUMS` of a live release."""
    if document == "manifest.json":
        data = manifest_bytes(name, version)
    elif document == "SHA256SUMS":
        data = sha256sums_bytes(name, version)
    else:
        raise NotFound(_("No such document."))
    return data, signing.sign(data)


# --- links ----------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime.settings().secret_key, salt=_LINK_SALT)


def file_path_url(name: str, version: int, variant: str, filename: str) -> str:
    """Site-relative URL of a release file, without its token."""
    return f"/files/{quote(name, safe='')}/{int(version)}/{variant}/{quote(filename, safe='')}"


def _validate_request(email, accept_terms, variant) -> dict[str, str]:
    problems: dict[str, str] = {}
    problem = email_problem(email.strip()) if isinstance(email, str) else "Enter an email address."
    if problem:
        problems["email"] = problem
    if accept_terms is not True:
        problems["accept_terms"] = _("You must accept the terms of use to download.")
    if variant not in VARIANTS:
        problems["variant"] = _("Choose the hashed (public) variant.")
    return problems


def request_links(
    principal,
    email,
    name: str,
    version: int | None,
    variant,
    accept_terms,
    ip: str | None = None,
) -> LinkGrant:
    """Record a download request and email its signed, expiring links; returns them too.

    No link without an email and accepted terms. Unhashed links only for an approved,
    current researcher, bound to them and sent to the address of their grant.
    """
    problems = _validate_request(email, accept_terms, variant)
    if problems:
        raise Invalid(_("Please correct the form."), fields=problems)
    info, found = release(name, version)
    researcher_id = None
    email = email.strip()
    if variant == "unhashed":
        policy.authorize(principal, "dataset.download_unhashed")
        researcher_id, email = principal.id, principal.email

    settings = runtime.settings()
    shown = links_shown()
    download = DownloadRequest(
        email=email, dataset=info.name, version=found.version, variant=variant,
        researcher_id=researcher_id, accepted_terms_at=utcnow(), ip=ip, language=i18n.current_locale(),
    )
    db.session.add(download)
    db.session.flush()
    expires_at = download.created_at + timedelta(hours=settings.download_link_hours)

    def links(proven: bool) -> list[Link]:
        # "p": the link went only to the mailbox (or to a researcher's granted address), so whoever
        # uses it has proven the address; links shown on a page prove nothing.
        token = _serializer().dumps({"r": download.id, "e": email, "d": info.name, "v": found.version,
                                     "t": variant, "u": researcher_id, "p": int(proven)})
        out = []
        for f in sorted(found.files, key=lambda f: f.path):
            if f.variant == variant:
                relative = f"{file_path_url(info.name, found.version, variant, f.path)}?token={token}"
                out.append(Link(f.path, variant, f.bytes, f.sha256, relative, settings.public_url + relative,
                                expires_at))
        return out

    emailed = LinkGrant(download.id, email, info.name, found.version, variant, expires_at, links(True))
    subject = _("Your download links: %(dataset)s, version %(version)s", dataset=info.name, version=found.version)
    notify.enqueue(email, subject, _links_email(emailed), "download_links")
    db.session.commit()
    dispatch.mail()
    # In production the links go to the address given and nowhere else (web and API alike).
    shown_links = links(researcher_id is not None) if shown or researcher_id is not None else []
    return LinkGrant(download.id, email, info.name, found.version, variant, expires_at, shown_links,
                     emailed=not shown_links)


def links_shown() -> bool:
    """Whether a download request may show its links on screen (demo and test modes only)."""
    return runtime.settings().mode in ("demo", "test")


def starts_a_download(byte_range, size: int) -> bool:
    """True unless `byte_range` resumes a download: any range resolving to byte 0 is a new one."""
    if byte_range is None:
        return True
    resolved = byte_range.range_for_length(size)
    return resolved is not None and resolved[0] == 0  # an unsatisfiable range (416) downloads nothing


def _links_email(grant: LinkGrant) -> str:
    base = runtime.settings().public_url
    variant = _("hashed") if grant.variant == "hashed" else _("unhashed")
    lines = [
        _("Hello,"),
        "",
        _("Here are your download links for the dataset %(dataset)s, version %(version)s (%(variant)s variant).",
          dataset=grant.dataset, version=grant.version, variant=variant),
        _("They work until %(when)s.", when=i18n.when(grant.expires_at)),
        "",
    ]
    for link in grant.links:
        lines += [_("%(file)s (%(bytes)s bytes, sha256 %(sha256)s)", file=link.path,
                    bytes=i18n.format_number(link.bytes), sha256=link.sha256), f"  {link.url}", ""]
    release = base + release_path(grant.dataset, grant.version)
    lines += [
        _("Signed manifest and SHA256SUMS, and how to verify them: %(url)s", url=release),
        "",
        _("If this release is ever corrected, we will email you once so you can replace your copy."),
        _("You received this message because this address was entered on our download form."),
    ]
    return "\n".join(lines)


def open_file(principal, name: str, version: int, variant: str, filename: str, token: str | None,
              ip: str | None = None, record: bool = True, byte_range=None) -> FileToServe:
    """Check a file link and log the download; returns the file to stream.

    An unhashed file answers NotFound to anyone without a current grant and a link
    of their own, so its name is never confirmed. A withdrawn release answers 410.
    """
    missing = NotFound(_("No such file."))
    if variant not in VARIANTS:
        raise missing
    if variant == "unhashed" and not policy.can(principal, "dataset.download_unhashed"):
        raise missing
    info, found = release(name, version)  # NotFound, or ReleaseWithdrawn (410) for an old link
    if not token:
        if variant == "unhashed":
            raise missing
        raise Forbidden(
            _("Downloads need a link: give your email and accept the terms on the dataset page."), code="link_required"
        )
    try:
        claims = _serializer().loads(token, max_age=runtime.settings().download_link_hours * 3600)
    except SignatureExpired:
        if variant == "unhashed" and not _token_is_for(token, principal):
            raise missing from None
        raise Forbidden(_("This link has expired. Ask for a new one on the dataset page."), code="link_expired") from None
    except BadSignature:
        raise missing from None
    if not isinstance(claims, dict) or (claims.get("d"), claims.get("v"), claims.get("t")) != (
        info.name, found.version, variant
    ):
        raise missing
    if variant == "unhashed" and claims.get("u") != principal.id:
        raise missing
    if db.session.get(DownloadRequest, claims.get("r")) is None:
        raise missing

    engine, errors = _engine()
    try:
        local = engine.file_path(info.name, found.version, variant, filename)
    except (errors.UnknownFile, errors.UnknownVersion, errors.UnknownDataset):
        raise missing from None
    # A suffix range (bytes=-N) covering the whole file is a whole download too: judged by length.
    if record and starts_a_download(byte_range, Path(local).stat().st_size):
        db.session.add(
            DownloadLog(
                email=claims["e"], dataset=info.name, version=found.version, variant=variant, path=filename,
                researcher_id=claims.get("u"), ip=ip, proven=bool(claims.get("p", 0)),
            )
        )
        db.session.commit()
    return FileToServe(Path(local), filename)


def _token_is_for(token: str, principal) -> bool:
    # Read an expired token's claims (its signature still checked) to see whose it was.
    try:
        _ok, claims = _serializer().loads_unsafe(token)
    except BadSignature:
        return False
    return _ok and isinstance(claims, dict) and isinstance(principal, Researcher) and claims.get("u") == principal.id


# --- telling earlier downloaders ------------------------------------------------------------


def notify_downloaders(releases: dict[str, int]) -> int:
    """Email, once, everyone who downloaded an earlier version of each corrected dataset.

    `releases` maps dataset name to its new version. Idempotent: a (email, dataset,
    old version) already told is never told again. Returns the number of emails queued.
    """
    for _attempt in range(3):
        try:
            sent = _queue_notices(releases)
            db.session.commit()
            break
        except IntegrityError:
            # A concurrent run told some of them first; the next round skips those.
            db.session.rollback()
    else:
        raise RuntimeError("could not record download notices after three attempts")
    dispatch.mail()
    return sent


def _queue_notices(releases: dict[str, int]) -> int:
    base = runtime.settings().public_url
    sent = 0
    for name, new_version in sorted(releases.items()):
        new_version = int(new_version)
        downloaded = db.session.execute(
            select(DownloadLog.email, DownloadLog.version)
            .where(DownloadLog.dataset == name, DownloadLog.version < new_version, DownloadLog.proven.is_(True))
            .distinct()
        ).all()
        told = set(
            db.session.execute(
                select(DownloadNotice.email, DownloadNotice.old_version).where(DownloadNotice.dataset == name)
            ).all()
        )
        by_email: dict[str, set[int]] = {}
        for email, old_version in downloaded:
            if (email, old_version) not in told:
                by_email.setdefault(email, set()).add(old_version)
        for email, old_versions in sorted(by_email.items()):
            for old_version in sorted(old_versions):
                db.session.add(DownloadNotice(email=email, dataset=name, old_version=old_version, new_version=new_version))
            with i18n.use_locale(_downloader_language(email, name)):
                subject = _("%(dataset)s: version %(version)s replaces your copy", dataset=name, version=new_version)
                body = _notice_email(name, sorted(old_versions), new_version, base)
            notify.enqueue(email, subject, body, "download_notice")
            sent += 1
        db.session.flush()
    return sent


def _downloader_language(email: str, dataset: str) -> str | None:
    # The language of the page of their latest request for this dataset (issue 16).
    return db.session.scalar(
        select(DownloadRequest.language)
        .where(DownloadRequest.email == email, DownloadRequest.dataset == dataset)
        .order_by(DownloadRequest.id.desc()).limit(1)
    )


def _notice_email(name: str, old_versions: list[int], new_version: int, base: str) -> str:
    olds = ", ".join(str(v) for v in old_versions)
    return "\n".join(
        [
            _("Hello,"),
            "",
            i18n.ngettext(
                "You downloaded version %(versions)s of the dataset %(dataset)s. A corrected release, "
                "version %(version)s, now replaces it.",
                "You downloaded versions %(versions)s of the dataset %(dataset)s. A corrected release, "
                "version %(version)s, now replaces them.",
                len(old_versions), versions=olds, dataset=name, version=new_version),
            "",
            _("Please delete your copy and download the new version:"),
            f"  {base}{release_path(name, new_version)}",
            "",
            _("The release page lists what changed, as counts, with a signed manifest and SHA256SUMS "
              "so you can check the files you get."),
            "",
            _("You received this message once, because this address downloaded the earlier version."),
        ]
    )
