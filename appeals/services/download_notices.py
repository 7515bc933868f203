"""Notices to earlier downloaders when a correction supersedes their copy (once per address and version)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from appeals import db, i18n, runtime
from appeals.i18n import gettext as _
from appeals.models import DownloadLog, DownloadNotice, DownloadRequest
from appeals.services import dispatch, notify
from appeals.services.catalogue import release_path


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
