"""Child processes that do not outlive their parent."""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Run in a child between fork and exec (``preexec_fn``): Linux sends it SIGTERM when its parent dies,
    even by SIGKILL, so no child is left running (and retrying) as an orphan."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's own stop is the only way children end
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
