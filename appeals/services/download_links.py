"""Gated downloads: signed expiring links, the download log, and serving a file (presigned redirect
to the object store, or streamed from the local store).

The gate (request_links, open_file and their helpers) moved here from downloads.py as one unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from appeals import db, i18n, runtime
from appeals.db import utcnow
from appeals.i18n import gettext as _
from appeals.models import DownloadLog, DownloadRequest, Researcher
from appeals.services import dispatch, notify, policy
from appeals.services.accounts import email_problem
from appeals.services.catalogue import engine_and_errors, release, release_path
from appeals.services.errors import Forbidden, Invalid, NotFound

VARIANTS = ("hashed", "unhashed")
_LINK_SALT = "appeals.download-link"


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
    """A file a link has unlocked: a presigned URL of the object store to redirect to, or (local store)
    where it is on disk; and the name to give it."""

    local_path: Path | None
    filename: str
    redirect_url: str | None = None  # signed for at most 15 minutes; Range then works at the store


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
    """Check a file link and log the download; returns the file to stream or the URL to redirect to.

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

    engine, errors = engine_and_errors()
    try:
        # The object store serves the bytes itself through a short-lived signed URL: the bucket is
        # private, so no file (unhashed ones included) has a stable or guessable address.
        url = engine.file_url(info.name, found.version, variant, filename, runtime.settings().presign_seconds)
        local = None if url else engine.file_path(info.name, found.version, variant, filename)
    except (errors.UnknownFile, errors.UnknownVersion, errors.UnknownDataset):
        raise missing from None
    # A suffix range (bytes=-N) covering the whole file is a whole download too: judged by length (the
    # manifest's, so that a redirect to the object store is judged like a streamed file).
    size = next(f.bytes for f in found.files if f.variant == variant and f.path == filename)
    if record and starts_a_download(byte_range, size):
        db.session.add(
            DownloadLog(
                email=claims["e"], dataset=info.name, version=found.version, variant=variant, path=filename,
                researcher_id=claims.get("u"), ip=ip, proven=bool(claims.get("p", 0)),
            )
        )
        db.session.commit()
    return FileToServe(Path(local) if local else None, filename, url)


def _token_is_for(token: str, principal) -> bool:
    # Read an expired token's claims (its signature still checked) to see whose it was.
    try:
        _ok, claims = _serializer().loads_unsafe(token)
    except BadSignature:
        return False
    return _ok and isinstance(claims, dict) and isinstance(principal, Researcher) and claims.get("u") == principal.id


