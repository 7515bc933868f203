"""Named crash points for kill -9 tests of the correction pipeline."""

from __future__ import annotations

import os
import signal
from typing import Callable

# Checkpoint names, in pipeline order.
POINTS = ("before_rewrite", "mid_rewrite", "after_verify", "mid_publish", "after_publish")

# In-process tests set this to a callable(name) that raises to simulate a crash.
test_hook: Callable[[str], None] | None = None


def checkpoint(name: str) -> None:
    """Die with SIGKILL here if APPEALS_FAULT_KILL_AT names this point; then call the test hook."""
    if os.environ.get("APPEALS_FAULT_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if test_hook is not None:
        test_hook(name)
