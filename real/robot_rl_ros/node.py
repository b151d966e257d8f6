"""What every node shares: logging, a clean stop on SIGINT/SIGTERM/SIGHUP, one-line fatal errors,
a fixed-rate loop, and a guard that stops a node whose ``robot-rl deploy`` died."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from robot_rl.configs.loading import ConfigError
from robot_rl_ros.transport import TransportError


class NodeError(RuntimeError):
    """A node cannot do its job (e.g. nobody records); the message says what to do."""


def setup_logging(name: str) -> logging.Logger:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="[%(levelname)s] [%(asctime)s] [%(name)s]: %(message)s")
    return logging.getLogger(name)


PARENT_ENV = "ROBOT_RL_DEPLOY_PID"
"""Set by ``robot-rl deploy`` in its nodes' environment: the pid whose death must stop them."""
_PR_SET_PDEATHSIG = 1


class Shutdown:
    """Set by SIGINT, SIGTERM or SIGHUP (what ``ros2 launch`` and ``robot-rl deploy`` send on stop,
    and what a closing terminal sends)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: self.event.set())

    def __bool__(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)


class Throttle:
    """Log a repeating problem at most once per ``period`` seconds per key."""

    def __init__(self, log: logging.Logger, period: float = 2.0) -> None:
        self.log, self.period = log, period
        self._last: dict[str, float] = {}

    def warning(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= self.period:
            self._last[key] = now
            self.log.warning(message, *args)


class Rate:
    """Sleep to absolute deadlines ``start + k·period`` so the loop period does not drift; a
    late iteration skips the missed deadlines instead of bursting to catch up."""

    def __init__(self, hz: float) -> None:
        self.period = 1.0 / hz
        self._next = time.perf_counter() + self.period
        self.overruns = 0

    def sleep(self, shutdown: Shutdown | None = None) -> None:
        remaining = self._next - time.perf_counter()
        if remaining > 0:
            if shutdown is not None:
                shutdown.wait(remaining)
            else:
                time.sleep(remaining)
            self._next += self.period
        else:
            self.overruns += 1
            missed = int(-remaining // self.period) + 1
            self._next += missed * self.period


def stop_with_parent() -> None:
    """When started by ``robot-rl deploy`` (``ROBOT_RL_DEPLOY_PID`` set), stop this node when deploy
    dies, even by SIGKILL: a node left running would keep commanding the robot. Linux delivers
    SIGTERM (a clean stop) through ``PR_SET_PDEATHSIG``; elsewhere a thread polls the parent."""
    expected = os.environ.get(PARENT_ENV, "")
    if not expected.isdigit():
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
            if os.getppid() != int(expected):  # deploy died before the guard was set
                raise SystemExit(f"error: robot-rl deploy (pid {expected}) is gone; not starting")
            return

    def watch() -> None:
        while os.getppid() == int(expected):
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    if os.getppid() != int(expected):
        raise SystemExit(f"error: robot-rl deploy (pid {expected}) is gone; not starting")
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a node's ``main`` and turn expected failures into one line and exit code 2."""
    stop_with_parent()
    try:
        return main(argv)
    except (ConfigError, TransportError, NodeError, FileNotFoundError, PermissionError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
