"""Helpers for the ROS 2 tests: bounded waits and node processes that are always stopped."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class Processes:
    """Node processes started by a test; all are stopped (SIGINT, then SIGKILL) at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, module: str, *args: str) -> subprocess.Popen:
        log = self.log_dir / f"{module.rsplit('.', 1)[-1]}-{len(self.procs)}.log"
        proc = subprocess.Popen([sys.executable, "-m", module, *args], env=self.env, stdout=log.open("w"),
                                stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        return proc

    def output(self, proc: subprocess.Popen) -> str:
        return next(log.read_text() for p, log in self.procs if p is proc)

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> int:
        if proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def stop_all(self) -> None:
        for proc, _ in reversed(self.procs):
            self.stop(proc)


class Probe:
    """A test's own participant: subscribes to topics and keeps every message with its arrival time."""

    def __init__(self, name: str = "probe") -> None:
        from robot_rl_ros.transport import make_transport

        self.transport = make_transport(name, "cyclone")
        self.received: dict[str, list[tuple[float, object]]] = {}

    def listen(self, topic: str, ros_type: str, qos: object = None) -> list[tuple[float, object]]:
        from robot_rl_ros.qos import DEFAULT

        box = self.received.setdefault(topic, [])
        self.transport.subscribe(topic, ros_type, lambda m: box.append((time.monotonic(), m)), qos or DEFAULT)
        return box

    def latest(self, topic: str) -> object | None:
        box = self.received.get(topic) or []
        return box[-1][1] if box else None

    def since(self, topic: str, t: float) -> list[object]:
        return [m for when, m in self.received.get(topic, []) if when >= t]

    def close(self) -> None:
        self.transport.close()


class Stop:
    """A node's shutdown flag without the signal handlers of ``robot_rl_ros.node.Shutdown``."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)
