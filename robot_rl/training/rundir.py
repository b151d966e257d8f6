"""Run directories, the one place every writer uses: ``robot-rl train``, ``offline-train``,
``finetune`` and the ROS 2 ``learner_node``.

    run = RunDir.create("runs", "panda_reach")         # runs/panda_reach/<date>_<time>/, locked
    run = RunDir.resume("runs/panda_reach/<stamp>")    # an existing run, locked
    run.write_config(to_dict(cfg)); run.checkpoint(128) # -> checkpoints/model_128.pt
    log = run.metrics(["env_steps", "loss/value"], resume_step=None)
    run.close()                                         # or leave with the process

A run directory has one writer at a time: an exclusive ``flock`` on ``<run>/.lock``, released
by the kernel when the process ends however it ends. A second writer gets
:class:`RunLockedError` naming the holder's pid. A resumed run's ``metrics.csv`` is cut back to
the checkpoint it resumes from, so the rows a killed process wrote after its last checkpoint are
not repeated.
"""

from __future__ import annotations

import csv
import datetime
import fcntl
import os
import re
from pathlib import Path
from typing import Any

import yaml

from robot_rl.utils.files import write_atomic

_CHECKPOINT = re.compile(r"model_(\d+)\.pt$")
LOCK_FILE = ".lock"


class RunDirError(ValueError):
    """A run directory that cannot be made, read or written; the message names the path and the fix."""


class RunLockedError(RunDirError):
    """Another process is writing the run directory."""


def newest_checkpoint(folder: Path) -> Path | None:
    """The ``model_<steps>.pt`` in ``folder`` with the largest number, or None."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("model_*.pt") if (m := _CHECKPOINT.search(p.name))]
    return max(found)[1] if found else None


def checkpoint_step(path: Path) -> int:
    """The number in ``model_<number>.pt``."""
    match = _CHECKPOINT.search(Path(path).name)
    if match is None:
        raise RunDirError(f"{path} is not named model_<steps>.pt")
    return int(match.group(1))


def os_problem(path: Path, error: OSError, fix: str) -> RunDirError:
    """One line for an OS error on ``path``: what went wrong and ``fix``."""
    if isinstance(error, PermissionError):
        reason = "permission denied"
    elif isinstance(error, NotADirectoryError | FileExistsError) and Path(path).exists() and not Path(path).is_dir():
        reason = "it is a file, not a folder"
    elif error.errno == 30:
        reason = "the file system is read-only"
    elif error.errno == 28:
        reason = "the disk is full"
    else:
        reason = error.strerror or str(error)
    return RunDirError(f"cannot write {path}: {reason}; {fix}")


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``["algo.lr 0.001 -> 0.0003", ...]``: the settings that differ between two config dicts."""
    a, b = _flat(old), _flat(new)
    return [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


class MetricsLog:
    """``metrics.csv`` with a fixed header: ``columns`` (plus, when appending, the existing header)."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns = Path(path), list(columns)
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerow(self.columns)

    @classmethod
    def open(cls, path: Path, columns: list[str], append: bool) -> MetricsLog:
        """A new metrics.csv, or with ``append`` (a resumed run) the existing one with its rows
        kept, gaining any column it lacks (left empty in the old rows)."""
        path = Path(path)
        if not (append and path.is_file()):
            return cls(path, columns)
        header, rows = _read_csv(path)
        if not [c for c in columns if c not in header]:
            log = cls.__new__(cls)
            log.path, log.columns = path, header
            return log
        columns = header + [c for c in columns if c not in header]
        _write_csv(path, columns, [row + [""] * (len(columns) - len(row)) for row in rows])
        log = cls.__new__(cls)
        log.path, log.columns = path, columns
        return log

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(c, "") for c in self.columns])


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return (rows[0], rows[1:]) if rows else ([], [])


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)

    write_atomic(path, write)


class RunDir:
    """An open run directory held by this process (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = _acquire(self.path)

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def create(cls, root: str | Path, task: str) -> RunDir:
        """``<root>/<task>/<YYYY-mm-dd_HH-MM-SS>/`` (suffixed if it exists) with ``checkpoints/``."""
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        base = Path(root) / task.replace(":", "_") / stamp  # gym:Env-v5 -> gym_Env-v5
        fix = "choose another root folder (--log.root, root:) that you can write to"
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            path, i = base, 1
            while True:
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    path, i = base.with_name(f"{stamp}_{i}"), i + 1
            (path / "checkpoints").mkdir()
        except OSError as error:
            raise os_problem(_blocking_file(base.parent), error, fix) from None
        return cls(path)

    @classmethod
    def resume(cls, path: str | Path) -> RunDir:
        """An existing run directory (it has ``config.yaml``), locked for this process."""
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise RunDirError(f"{path} is not a run directory: it has no config.yaml; give the folder a run "
                              "printed as its run directory (<root>/<task>/<date>_<time>)")
        run = cls(path)
        (path / "checkpoints").mkdir(exist_ok=True)
        return run

    def close(self) -> None:
        """Release the lock (also released when the process ends)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __fspath__(self) -> str:
        return str(self.path)

    # -- contents ------------------------------------------------------------------------------

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"model_{step}.pt"

    def newest_checkpoint(self) -> Path | None:
        return newest_checkpoint(self.checkpoints)

    def write_config(self, data: dict[str, Any]) -> Path:
        """``config.yaml``: the resolved config, written whole or not at all."""
        text = yaml.safe_dump(data, sort_keys=False)
        return write_atomic(self.path / "config.yaml", lambda tmp: tmp.write_text(text))

    def read_config(self) -> dict[str, Any]:
        return read_config_dict(self.path)

    def metrics(self, columns: list[str], resume_step: int | None = None, step_key: str = "env_steps") -> MetricsLog:
        """``metrics.csv``: new, or for a run resumed at ``resume_step`` (its checkpoint's
        ``step_key`` value) the existing one without the rows logged after that step."""
        path = self.path / "metrics.csv"
        if resume_step is not None:
            self.cut_metrics(resume_step, step_key)
        return MetricsLog.open(path, columns, append=resume_step is not None)

    def cut_metrics(self, step: int, step_key: str = "env_steps") -> int:
        """Drop the ``metrics.csv`` rows whose ``step_key`` is past ``step`` (written after the
        checkpoint a run resumes from); returns how many were dropped."""
        path = self.path / "metrics.csv"
        if not path.is_file():
            return 0
        header, rows = _read_csv(path)
        if step_key not in header:
            return 0
        column = header.index(step_key)
        kept = [row for row in rows if len(row) > column and _number(row[column]) <= step]
        if len(kept) < len(rows):
            _write_csv(path, header, kept)
        return len(rows) - len(kept)


def read_config_dict(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.yaml`` as a dict; RunDirError when it is missing or not YAML."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory: it has no config.yaml")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise RunDirError(f"{path} is not valid YAML ({str(error).splitlines()[0]}); restore it from the "
                          "'config' entry of a checkpoint") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path} holds no settings; restore it from the 'config' entry of a checkpoint")
    return data


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")


def _blocking_file(path: Path) -> Path:
    """The file that stands where a folder on the way to ``path`` should be, else ``path``."""
    for parent in reversed([path, *path.parents]):
        if parent.exists() and not parent.is_dir():
            return parent
    return path


def _acquire(path: Path):
    """Hold ``<path>/.lock`` exclusively; RunLockedError naming the holder otherwise."""
    lock_path = path / LOCK_FILE
    try:
        handle = open(lock_path, "a+")
    except OSError as error:
        raise os_problem(lock_path, error, "a run directory must be writable to train into it") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise RunLockedError(f"{path} is in use by another process (pid {holder}); wait for it to end or stop it "
                             f"(kill {holder}), then resume") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
