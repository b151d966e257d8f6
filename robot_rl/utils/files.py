"""Files that check themselves: torch payloads written atomically with a checksum, and read back
with weights-only loading, the zip archive's CRCs and that checksum verified.

    write_checked(path, {"format": "robot_rl.ppo/1", "model": model.state_dict(), ...})
    payload = read_checked(path, "robot_rl.ppo/1", what="PPO checkpoint")

Anything wrong (missing, truncated, a flipped bit, another kind of file, a pickle that would run
code) raises :class:`CorruptFileError` with one line naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import struct
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

CHECKSUM = "checksum"
"""The payload key holding the SHA-256 of everything else in the payload."""


class CorruptFileError(ValueError):
    """A file that is missing, damaged, or not the kind of file it was given as."""


class WriteError(OSError):
    """A file that could not be written (disk full, no permission, ...); nothing half-written is left."""


def digest(value: Any) -> str:
    """SHA-256 (hex) of a payload: nested dicts, lists and tuples of tensors, numbers, strings,
    booleans and None. Tensors count by dtype, shape and bytes; dict entries in key order."""
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()


def _feed(h, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            _feed(h, key)
            _feed(h, value[key])
    elif isinstance(value, list | tuple):
        h.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}".encode())
        for item in value:
            _feed(h, item)
    elif isinstance(value, float):
        h.update(b"F" + struct.pack("<d", value))
    else:  # int, bool, str, None, torch.Size, dtypes: repr is exact
        h.update(f"{type(value).__name__}:{value!r}".encode())


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP until the block ends, so Ctrl-C or ``kill`` in the middle of
    writing a file lands after it is complete (only in the main thread; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(pending):  # each once, in arrival order, to the handlers from before
            signal.raise_signal(s)


def write_failure(path: Path, error: BaseException) -> WriteError:
    """One line saying why ``path`` could not be written and what to do."""
    folder = Path(path).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if getattr(error, "errno", None) == 28 or (free is not None and free < 16 << 20):
        shown = "" if free is None else f" ({free / 2**20:.0f} MiB free)"
        return WriteError(f"cannot write {path}: the disk is full{shown}; free space there or write elsewhere")
    if isinstance(error, PermissionError):
        return WriteError(f"cannot write {path}: permission denied; choose a folder you can write to")
    reason = getattr(error, "strerror", None) or (str(error).splitlines() or [type(error).__name__])[0]
    return WriteError(f"cannot write {path}: {reason}")


def write_atomic(path: Path, write) -> Path:
    """Call ``write(tmp)`` for a temporary file beside ``path``, then move it into place, so
    ``path`` is never half-written; signals wait until it is done. On failure the temporary file
    is removed and :class:`WriteError` says why."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with signals_deferred():
        try:
            write(tmp)
            os.replace(tmp, path)
        except (OSError, RuntimeError) as error:  # torch.save reports a full disk as RuntimeError
            tmp.unlink(missing_ok=True)
            raise write_failure(path, error) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def write_checked(path: Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` ``payload`` plus its checksum to ``path``, atomically."""
    if CHECKSUM in payload:
        raise ValueError(f"the payload for {path} already has a {CHECKSUM!r} entry")
    sealed = {**payload, CHECKSUM: digest(payload)}
    return write_atomic(path, lambda tmp: torch.save(sealed, tmp))


def check_zip(path: Path, data: bytes | None = None) -> None:
    """The zip archive (``torch.save`` and ``torch.export.save`` files are ones) is whole and
    every entry matches its CRC; CorruptFileError otherwise."""
    source = io.BytesIO(data) if data is not None else path
    try:
        with zipfile.ZipFile(source) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as error:
        raise CorruptFileError(f"{path} is truncated or not a torch file ({error})") from None
    if bad is not None:
        raise CorruptFileError(f"{path} is corrupted: its entry {bad} fails its CRC check (a damaged copy; "
                               "use another copy or an earlier checkpoint)")


def read_checked(path: Path, formats: str | tuple[str, ...] | None, what: str) -> dict[str, Any]:
    """The payload :func:`write_checked` wrote to ``path``, read weights-only (no code can run)
    and verified: a zip whose CRCs match, a dict whose ``format`` is one of ``formats`` (any with
    None) and whose checksum matches (files written before checksums existed have none and are
    checked by the CRCs alone). CorruptFileError with one line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    check_zip(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure of a damaged or foreign file is reported the same way
        first = (str(error).splitlines() or [""])[0][:200]
        raise CorruptFileError(f"{path} is not a readable {what} ({type(error).__name__}: {first})") from None
    if isinstance(formats, str):
        formats = (formats,)
    if not isinstance(payload, dict) or (formats is not None and payload.get("format") not in formats):
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        kind = what if what.startswith(("a ", "an ")) else f"a {what}"
        raise CorruptFileError(f"{path} is not {kind} (format {found!r}, expected {' or '.join(formats or ())})")
    if CHECKSUM in payload:
        stored = payload.pop(CHECKSUM)
        if stored != digest(payload):
            raise CorruptFileError(f"{path} is corrupted: its contents do not match the checksum written with "
                                   "them; use another copy or an earlier checkpoint")
    return payload
