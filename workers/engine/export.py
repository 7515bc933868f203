"""Export one variant of a release as archive-named files plus manifest.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def export_release(manifest: dict, blobs, variant: str, to_dir: Path) -> list[Path]:
    """Copy the variant's files into to_dir under their archive names; write manifest.json; return paths."""
    to_dir.mkdir(parents=True, exist_ok=True)
    out = []
    files = [e for e in manifest["files"] if e["variant"] == variant]
    for e in files:
        dest = to_dir / e["path"]
        with blobs.open(e["sha256"]) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst, 8 * 1024 * 1024)
        out.append(dest)
    doc = dict(manifest, variant=variant, files=files)
    mpath = to_dir / "manifest.json"
    mpath.write_text(json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    out.append(mpath)
    return out
