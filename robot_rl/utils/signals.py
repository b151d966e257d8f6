"""Stopping long runs cleanly when they are killed."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def sigterm_interrupts() -> Callable[[], None]:
    """Until the returned function is called, SIGTERM (and SIGHUP: the terminal closed) raise
    KeyboardInterrupt as Ctrl-C does, so a training loop that saves when interrupted also saves
    when killed (``kill``, a job scheduler, a container stop). Outside the main thread, where
    Python cannot take signals, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    return restore
