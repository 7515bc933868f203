"""Public releases and gated downloads, one name for the views: the catalogue (catalogue.py), links and
file serving (download_links.py) and notices to earlier downloaders (download_notices.py)."""

from __future__ import annotations

from appeals.services.catalogue import (  # noqa: F401
    ReleaseWithdrawn,
    catalogue,
    changes,
    current_release,
    dataset,
    disclosed_at,
    history,
    manifest_bytes,
    public_manifest,
    release,
    release_path,
    sha256sums_bytes,
    signed,
)
from appeals.services.download_links import (  # noqa: F401
    VARIANTS,
    FileToServe,
    Link,
    LinkGrant,
    file_path_url,
    links_shown,
    open_file,
    request_links,
    starts_a_download,
)
from appeals.services.download_notices import notify_downloaders  # noqa: F401
