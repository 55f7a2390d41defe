"""Ctrl-C that works however a process was started.

A job started in the background of a shell (`make test &`, some CI runners and
supervisors) inherits SIGINT as ignored, and Python then installs no KeyboardInterrupt
handler: Ctrl-C, or a SIGINT from whoever started it, would do nothing. Long-running
entry points call `answer_ctrl_c()` first, so SIGINT always stops them cleanly.
"""

from __future__ import annotations

import signal


def answer_ctrl_c() -> None:
    """SIGINT raises KeyboardInterrupt again, even if it was ignored when we started."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def default_sigint() -> None:
    """For `preexec_fn`: the child starts with SIGINT at its default, not our disposition."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
