"""Evidence files from owners: recognised by content, images stripped of metadata, kept in the release blob store."""

from __future__ import annotations

import io
import os
import unicodedata
import warnings
from dataclasses import dataclass

from sqlalchemy import select

from appeals import db, runtime
from appeals.i18n import gettext as _
from appeals.i18n import lazy_gettext
from appeals.models import Appeal, Attachment, Staff
from appeals.models.accounts import Account
from appeals.requests import iso
from appeals.services import policy
from appeals.services.errors import NotFound

MAX_FILES = 5
MAX_BYTES = 10 * 1024 * 1024
# A 10 MB image can still decode to a huge bitmap; refuse anything larger than a big screenshot.
MAX_PIXELS = 40_000_000
# The whole request: every file at its largest, plus the form's text.
MAX_REQUEST_BYTES = MAX_FILES * MAX_BYTES + 1024 * 1024

# Recognised type -> (what people call it, the name endings that agree with it, the ending we add).
KINDS = {
    "image/png": (lazy_gettext("a PNG image"), (".png",), ".png"),
    "image/jpeg": (lazy_gettext("a JPEG image"), (".jpg", ".jpeg", ".jpe", ".jfif"), ".jpg"),
    "application/pdf": (lazy_gettext("a PDF document"), (".pdf",), ".pdf"),
    "text/plain": (lazy_gettext("a plain text file"), (".txt", ".text", ".eml", ".log", ".md", ".csv"), ".txt"),
}
ACCEPTED = "PNG, JPEG, PDF or plain text"
# The web endpoints whose forms carry files: only they accept request bodies up to MAX_REQUEST_BYTES.
UPLOAD_ENDPOINTS = frozenset({"owner.new_appeal", "owner.reply"})


@dataclass(frozen=True)
class Upload:
    """A file as received: the name the person's device gave it and (at most MAX_BYTES + 1 of) its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Checked:
    """A file that passed every check, ready to store: clean name, recognised type, cleaned bytes."""

    filename: str
    media_type: str
    data: bytes


def sniff(data: bytes) -> str | None:
    """The media type the bytes themselves show (magic numbers; text if it is clean UTF-8), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data and _is_plain_text(data):
        return "text/plain"
    return None


def _is_plain_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    # Control characters other than tabs, line and page breaks mean a binary file in disguise.
    return not any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f" for ch in text)


def clean_name(filename: str) -> str:
    """The file's own name without folders or control characters, at most 120 characters."""
    name = os.path.basename((filename or "").replace("\\", "/"))
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if len(name) > 120:
        stem, ext = os.path.splitext(name)
        name = stem[: 120 - len(ext)] + ext
    return name or "evidence"


def _strip_image(data: bytes, media_type: str) -> bytes:
    """The image re-encoded from its pixels alone: EXIF (GPS, camera), text chunks and comments are gone."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()  # a truncated or corrupt file fails here, before any decoding work
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError("too many pixels")
            # Turn the picture the way its EXIF says before that EXIF is dropped.
            image = ImageOps.exif_transpose(image)
            image.info = {}
            out = io.BytesIO()
            if media_type == "image/png":
                image.save(out, "PNG")
            else:
                if image.mode not in ("RGB", "L", "CMYK"):
                    image = image.convert("RGB")
                image.save(out, "JPEG", quality=92)
    return out.getvalue()


def check(uploads: list[Upload]) -> tuple[list[Checked], str | None]:
    """Check every upload: (the cleaned files, None), or ([], one clear message naming the file at fault).

    Nothing is stored here; a refusal keeps nothing.
    """
    uploads = [u for u in uploads if u.filename or u.data]
    if len(uploads) > MAX_FILES:
        return [], _("Choose at most %(max)s files; you chose %(count)s.", max=MAX_FILES, count=len(uploads))
    checked = []
    for upload in uploads:
        name = clean_name(upload.filename)
        if len(upload.data) > MAX_BYTES:
            return [], _("%(file)s is larger than %(max)s MB. Choose a smaller file.", file=name,
                         max=MAX_BYTES // (1024 * 1024))
        if not upload.data:
            return [], _("%(file)s is empty. Choose the file again.", file=name)
        media_type = sniff(upload.data)
        if media_type is None:
            return [], _("%(file)s is not a PNG, JPEG, PDF or plain text file. Choose a screenshot, a PDF or a text file.",
                         file=name)
        kind, endings, default_ending = KINDS[media_type]
        stem, ending = os.path.splitext(name)
        if not ending:
            name += default_ending
        elif ending.lower() not in endings:
            return [], _("%(file)s is %(kind)s, but its name ends in %(ending)s. "
                         "Rename it to end in %(default)s, or choose another file.", file=name, kind=kind,
                         ending=ending, default=default_ending)
        data = upload.data
        if media_type.startswith("image/"):
            try:
                data = _strip_image(data, media_type)
            except Exception:  # Pillow raises many kinds for a damaged image; all mean the same to the owner
                return [], _("%(file)s looks like %(kind)s but cannot be read. It may be damaged; choose another file.",
                             file=name, kind=kind)
        checked.append(Checked(name, media_type, data))
    return checked, None


def attach(appeal: Appeal, files: list[Checked], message_id: int | None = None) -> list[Attachment]:
    """Store the files' bytes in the release blob store and record them on `appeal`, in the caller's transaction.

    Blobs are content-addressed: if the transaction then fails, an unreferenced blob is left and
    reachable by no URL (nothing is shown without its database row).
    """
    if not files:
        return []
    store = runtime.engine().store
    with store.staging() as tmp:
        staged = [store.blobs.stage_bytes(f.data, tmp) for f in files]
        store.blobs.put_many(list(staged))
    rows = [
        Attachment(appeal_id=appeal.id, message_id=message_id, filename=f.filename, media_type=f.media_type,
                   size=len(f.data), sha256=sha)
        for f, (_path, sha) in zip(files, staged)
    ]
    db.session.add_all(rows)
    db.session.flush()
    return rows


def listing(appeal_id: int) -> list[dict]:
    """The appeal's attachments, oldest first, as plain dicts (no authorization: callers have checked)."""
    rows = db.session.scalars(
        select(Attachment).where(Attachment.appeal_id == appeal_id).order_by(Attachment.id)
    )
    return [
        {"id": a.id, "filename": a.filename, "media_type": a.media_type, "size": a.size,
         "message_id": a.message_id, "created_at": iso(a.created_at)}
        for a in rows
    ]


def open_attachment(principal, appeal_id, attachment_id) -> tuple[Attachment, object]:
    """The attachment and an open binary file of it, for its appeal's owner or a reviewer; NotFound for anyone else."""
    try:
        appeal_id, attachment_id = int(appeal_id), int(attachment_id)
    except (TypeError, ValueError):
        raise NotFound(_("No such file.")) from None
    appeal = db.session.get(Appeal, appeal_id)
    attachment = db.session.get(Attachment, attachment_id)
    if appeal is None or attachment is None or attachment.appeal_id != appeal.id:
        raise NotFound(_("No such file."))
    if isinstance(principal, Account):
        policy.authorize(principal, "appeal.view_own", appeal)
    elif isinstance(principal, Staff) and policy.can(principal, "appeal.view", appeal):
        pass
    else:
        # Researchers, other owners, anyone: the file does not exist for them.
        raise NotFound(_("No such file."))
    return attachment, runtime.engine().store.blobs.open(attachment.sha256)
