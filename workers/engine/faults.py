"""Named crash points for kill -9 tests of the correction pipeline, armed from `Settings`."""

from __future__ import annotations

import os
import signal
import time
from typing import Callable

# Checkpoint names, in pipeline order.
POINTS = ("before_rewrite", "mid_rewrite", "after_verify", "mid_publish", "after_publish")

# In-process tests set this to a callable(name) that raises to simulate a crash.
test_hook: Callable[[str], None] | None = None

# Armed by `arm` (runtime.bootstrap does, from APPEALS_FAULT_KILL_AT / APPEALS_FAULT_PAUSE_AT).
_armed: dict = {"kill_at": None, "pause_at": None, "pause_seconds": 0.0}


def arm(kill_at: str | None = None, pause_at: str | None = None) -> None:
    """Die with SIGKILL at checkpoint `kill_at`; sleep at `pause_at` ("point:seconds"). None disarms."""
    point, _, seconds = (pause_at or "").partition(":")
    _armed.update(kill_at=kill_at or None, pause_at=point or None, pause_seconds=float(seconds or 0))


def checkpoint(name: str) -> None:
    """Pause or die here if armed for this point; then call the test hook."""
    if _armed["pause_at"] == name:
        time.sleep(_armed["pause_seconds"])
    if _armed["kill_at"] == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if test_hook is not None:
        test_hook(name)
