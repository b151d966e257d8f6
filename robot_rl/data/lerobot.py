"""LeRobot v3 datasets: write episode by episode, read back with pyarrow.

Layout (LeRobot ``codebase_version`` v3.0)::

    meta/info.json                                   features, integer fps, totals, path templates
    meta/stats.json                                  min/max/mean/std/count per feature
    meta/tasks.parquet                               task_index column, the task text as the pandas index
    meta/episodes/chunk-000/file-000.parquet         one row per episode: length, data file, index range
                                                     [dataset_from_index, dataset_to_index), stats/<feature>/*
    data/chunk-{c:03d}/file-{f:03d}.parquet          frames of one or more episodes

Each finished episode is written as its own data file and the metadata files are replaced
atomically after it, so a crash loses at most the episode being recorded. (LeRobot packs several
episodes per file to stay under ~100 MB; one per file is valid v3 and keeps every write final.)
Readers here take any packing: a file is read once and cut into episodes by their index ranges.

    writer = LeRobotWriter(root, fps=20, features={"action": Feature("float32", (8,))})
    writer.add_frame({"action": a, ...}); writer.end_episode("reach the ball")
    table = read_frames(root)                        # pyarrow.Table of every frame

Frames of robot_rl's datasets carry ``observation.policy`` (and ``observation.privileged`` in
simulation), camera images ``observation.images.<camera>``, the executed ``action``, the policy's
``policy_action`` and the ``intervention`` flag (:func:`transition_features`); rewards, success and
ground-truth progress are ``next.*`` columns. :mod:`robot_rl.data.dataset` reads them as transitions.
A value that is not a finite number is refused when written (:class:`DatasetError` naming the
column, episode and frame); nothing of the episodes already ended is lost.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robot_rl.data.png import encode_png

CODEBASE_VERSION = "v3.0"
CHUNK_SIZE = 1000  # files per chunk directory, as LeRobot
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
TASKS_PATH = "meta/tasks.parquet"
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
STATS = ("min", "max", "mean", "std", "count")


class DatasetError(ValueError):
    """A dataset that cannot be used or written as asked; the message names the file or column and the fix."""


@dataclass(frozen=True)
class Feature:
    dtype: str
    """``float32``, ``float64``, ``int64``, ``bool`` or ``image`` (uint8[H, W, 3] stored as PNG)."""
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None

    def arrow_type(self) -> pa.DataType:
        if self.dtype == "image":
            return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        scalar = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_()}[self.dtype]
        return scalar if self.shape == (1,) else pa.list_(scalar)

    def numpy_dtype(self) -> type:
        return {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_,
                "image": np.uint8}[self.dtype]

    def info(self) -> dict[str, Any]:
        if self.dtype == "image":
            return {"dtype": "image", "shape": list(self.shape), "names": ["height", "width", "channels"]}
        return {"dtype": self.dtype, "shape": list(self.shape), "names": list(self.names) if self.names else None}


def _index_features() -> dict[str, Feature]:
    return {"timestamp": Feature("float32", (1,)), "frame_index": Feature("int64", (1,)),
            "episode_index": Feature("int64", (1,)), "index": Feature("int64", (1,)),
            "task_index": Feature("int64", (1,))}


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def first_nonfinite(values: np.ndarray) -> tuple[int, float] | None:
    """(row, value) of the first row of float[N, ...] ``values`` holding NaN or ±inf; None if all are finite."""
    if values.dtype.kind != "f":
        return None
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if not bad.any():
        return None
    row = int(np.argmax(bad))
    flat = values[row].reshape(-1)
    return row, float(flat[~np.isfinite(flat)][0])


class Stats:
    """Running min/max/mean/std of one feature, as LeRobot keeps them: per value of a vector
    feature, per channel over every pixel of an image feature (scaled to [0, 1], shape
    (3, 1, 1)); ``count`` is the number of frames."""

    def __init__(self, image: bool = False) -> None:
        self.image = image
        self.frames, self.n = 0, 0
        self.sum: Any = 0.0
        self.sumsq: Any = 0.0
        self.min: Any = None
        self.max: Any = None

    def add(self, values: np.ndarray) -> None:
        """Add T frames: float[T, *shape], or uint8[T, H, W, 3] for images."""
        if len(values) == 0:
            return
        x = values.reshape(-1, 3).astype(np.float64) / 255.0 if self.image else values.astype(np.float64)
        self.frames += len(values)
        self.n += len(x)
        self.sum = self.sum + x.sum(axis=0)
        self.sumsq = self.sumsq + (x * x).sum(axis=0)
        low, high = x.min(axis=0), x.max(axis=0)
        self.min = low if self.min is None else np.minimum(self.min, low)
        self.max = high if self.max is None else np.maximum(self.max, high)

    def merge(self, other: Stats) -> None:
        """Add the frames counted by ``other`` (e.g. one episode's stats into the dataset's)."""
        if not other.frames:
            return
        self.frames += other.frames
        self.n += other.n
        self.sum = self.sum + other.sum
        self.sumsq = self.sumsq + other.sumsq
        self.min = other.min if self.min is None else np.minimum(self.min, other.min)
        self.max = other.max if self.max is None else np.maximum(self.max, other.max)

    def as_dict(self) -> dict[str, list[Any]]:
        """{min, max, mean, std: nested lists of the feature's shape ((3, 1, 1) for images), count: [frames]}."""
        mean = self.sum / self.n
        std = np.sqrt(np.maximum(self.sumsq / self.n - mean * mean, 0.0))
        shape = (3, 1, 1) if self.image else np.shape(mean)

        def out(x: Any) -> Any:
            return np.reshape(np.asarray(x, dtype=np.float64), shape).tolist()

        return {"min": out(self.min), "max": out(self.max), "mean": out(mean), "std": out(std),
                "count": [self.frames]}


def whole_fps(fps: float, where: str | Path) -> int:
    """``fps`` as the integer LeRobot stores; refuses a rate that is not a whole number of Hz."""
    value = float(fps)
    if not math.isfinite(value) or round(value) < 1 or abs(value - round(value)) > 1e-6 * max(value, 1.0):
        raise DatasetError(f"{where}: fps {fps} is not a whole number of frames per second; LeRobot datasets store "
                           "an integer fps: record at a whole rate (e.g. control_dt 0.05 s -> 20 fps)")
    return int(round(value))


def _tasks_table(tasks: dict[str, int]) -> pa.Table:
    """meta/tasks.parquet as pandas writes LeRobot's: a ``task_index`` column and the task text as
    the table's index named ``task`` (so ``pandas.read_parquet(...).iloc[i].name`` is the text)."""
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                     "numpy_type": "int64", "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                     "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__},
    }
    schema = pa.schema([("task_index", pa.int64()), ("task", pa.string())],
                       metadata={b"pandas": json.dumps(pandas_meta).encode()})
    return pa.table({"task_index": list(tasks.values()), "task": list(tasks)}, schema=schema)


class LeRobotWriter:
    """Writes frames of one episode at a time; ``end_episode`` makes the episode durable."""

    def __init__(self, root: str | Path, fps: float, features: dict[str, Feature],
                 robot_type: str | None = None, extra_info: dict[str, Any] | None = None) -> None:
        """``fps``: a whole number of frames per second; ``extra_info`` is stored in
        ``meta/info.json`` under ``"robot_rl"`` (e.g. the sim task name)."""
        self.root = Path(root)
        if (self.root / "meta" / "info.json").exists():
            raise FileExistsError(f"{self.root} already holds a LeRobot dataset; record into a new directory")
        clash = set(features) & set(INDEX_FEATURES)
        if clash:
            raise ValueError(f"features {sorted(clash)} are written by the dataset itself; rename them")
        self.fps = whole_fps(fps, self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.robot_type, self.extra_info = robot_type, dict(extra_info or {})
        self.features = {**features, **_index_features()}
        self.schema = pa.schema([(name, f.arrow_type()) for name, f in self.features.items()])
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict[str, Any]] = []
        self.total_frames = 0
        self._frames: list[dict[str, np.ndarray]] = []
        self._stats = {name: Stats(f.dtype == "image") for name, f in self.features.items()}
        self._write_meta()

    def add_frame(self, frame: dict[str, Any]) -> None:
        """One step: a value for every feature given to the constructor (arrays in their shape).
        A value of the wrong size, not a number, NaN or infinite is refused with a
        :class:`DatasetError` naming the column, episode and frame; the frame is not kept."""
        missing = [name for name in self.features if name not in frame and name not in INDEX_FEATURES]
        if missing:
            raise KeyError(f"frame lacks features {missing}")
        where = f"{self.root}: episode {len(self.episodes)}, frame {len(self._frames)}"
        row = {}
        for name, feature in self.features.items():
            if name in INDEX_FEATURES:
                continue
            value = frame[name]
            try:
                array = np.asarray(value, dtype=feature.numpy_dtype())
            except (TypeError, ValueError):
                raise DatasetError(f"{where}: column {name!r} is {value!r}, not {feature.dtype}; "
                                   "pass numbers (the frame was not written)") from None
            if array.size != math.prod(feature.shape):
                raise DatasetError(f"{where}: column {name!r} has {array.size} values but the dataset declares "
                                   f"shape {list(feature.shape)}; pass one value per element (the frame was not "
                                   "written)")
            bad = first_nonfinite(array.reshape(1, -1))
            if bad is not None:
                raise DatasetError(f"{where}: column {name!r} holds {bad[1]} (values must be finite numbers); the "
                                   "frame was not written: find what produced it (sensor, policy, reward)")
            row[name] = array.reshape(feature.shape)
        self._frames.append(row)

    def end_episode(self, task: str = "") -> int | None:
        """Write the open episode (if it has frames); returns its index."""
        if not self._frames:
            return None
        episode, length, start = len(self.episodes), len(self._frames), self.total_frames
        task_index = self.tasks.setdefault(task, len(self.tasks))
        values = {name: np.stack([f[name] for f in self._frames]) for name in self.features if name not in
                  INDEX_FEATURES}
        values.update({"timestamp": np.arange(length) / self.fps, "frame_index": np.arange(length),
                       "episode_index": np.full(length, episode), "index": start + np.arange(length),
                       "task_index": np.full(length, task_index)})
        columns, stats = {}, {}
        for name, feature in self.features.items():
            values[name] = values[name].reshape(length, *feature.shape)
            columns[name] = self._column(feature, values[name])
            episode_stats = Stats(feature.dtype == "image")
            episode_stats.add(values[name])
            self._stats[name].merge(episode_stats)
            stats.update({f"stats/{name}/{k}": v for k, v in episode_stats.as_dict().items()})
        chunk, file = divmod(episode, CHUNK_SIZE)
        path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        table = pa.table(columns, schema=self.schema)
        _atomic_write(path, lambda p: pq.write_table(table, p))
        self.total_frames += length
        self.episodes.append({
            "episode_index": episode, "tasks": [task], "length": length,
            "data/chunk_index": chunk, "data/file_index": file,
            "dataset_from_index": start, "dataset_to_index": self.total_frames,
            "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0, **stats,
        })
        self._frames = []
        self._write_meta()
        return episode

    @staticmethod
    def _column(feature: Feature, values: np.ndarray) -> pa.Array:
        """The arrow column of T frames' ``values`` [T, *shape] (images uint8[T, H, W, 3] -> PNG cells)."""
        if feature.dtype == "image":
            return pa.array([{"bytes": encode_png(np.ascontiguousarray(v)), "path": None} for v in values],
                            type=feature.arrow_type())
        if feature.shape == (1,):
            return pa.array(values.reshape(-1), type=feature.arrow_type())
        flat = values.reshape(len(values), -1)
        offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32) * flat.shape[1])
        return pa.ListArray.from_arrays(offsets, pa.array(flat.reshape(-1), type=feature.arrow_type().value_type))

    def _write_meta(self) -> None:
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type,
            "total_episodes": len(self.episodes), "total_frames": self.total_frames, "total_tasks": len(self.tasks),
            "chunks_size": CHUNK_SIZE, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": self.fps, "splits": {"train": f"0:{len(self.episodes)}"},
            "data_path": DATA_PATH, "video_path": None,
            "features": {name: f.info() for name, f in self.features.items()},
        }
        if self.extra_info:
            info["robot_rl"] = self.extra_info
        meta = self.root / "meta"
        _atomic_write(meta / "info.json", lambda p: p.write_text(json.dumps(info, indent=2)))
        stats = {name: s.as_dict() for name, s in self._stats.items() if s.frames}
        _atomic_write(meta / "stats.json", lambda p: p.write_text(json.dumps(stats, indent=2)))
        tasks = _tasks_table(self.tasks)
        _atomic_write(self.root / TASKS_PATH, lambda p: pq.write_table(tasks, p))
        if self.episodes:
            episodes = pa.Table.from_pylist(self.episodes)
            _atomic_write(self.root / EPISODES_PATH, lambda p: pq.write_table(episodes, p))

    def close(self, task: str = "") -> None:
        """Write a partly recorded episode too (a clean stop keeps everything)."""
        self.end_episode(task)


def transition_features(policy_dim: int, action_dim: int, privileged_dim: int = 0,
                        cameras: dict[str, tuple[int, int]] | None = None,
                        progress: bool = True) -> dict[str, Feature]:
    """The columns of a robot_rl dataset of ``policy_dim`` observations and ``action_dim`` actions:
    ``observation.policy``, ``observation.privileged`` (when ``privileged_dim``),
    ``observation.images.<camera>`` ((H, W) per camera), ``action`` (executed), ``policy_action``,
    ``intervention``, ``next.reward`` (the task's reward), ``next.terminated``, ``next.done``
    (terminated or truncated), ``next.success`` and, with ``progress``, ``observation.progress`` and
    ``next.progress`` (the task's ground-truth progress before and after the step)."""
    f = {"observation.policy": Feature("float32", (policy_dim,))}
    if privileged_dim:
        f["observation.privileged"] = Feature("float32", (privileged_dim,))
    for camera, (h, w) in (cameras or {}).items():
        f[f"observation.images.{camera}"] = Feature("image", (h, w, 3))
    f.update({"action": Feature("float32", (action_dim,)), "policy_action": Feature("float32", (action_dim,)),
              "intervention": Feature("bool", (1,)), "next.reward": Feature("float32", (1,)),
              "next.terminated": Feature("bool", (1,)), "next.done": Feature("bool", (1,)),
              "next.success": Feature("bool", (1,))})
    if progress:
        f["observation.progress"] = Feature("float32", (1,))
        f["next.progress"] = Feature("float32", (1,))
    return f


# -- reading -----------------------------------------------------------------------------------


def read_info(root: str | Path) -> dict[str, Any]:
    """meta/info.json, checked: valid JSON with a ``features`` table and a positive ``fps``."""
    path = Path(root) / "meta" / "info.json"
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path} is not valid JSON ({error}); restore it from a copy of the dataset") from None
    if not isinstance(info, dict) or not isinstance(info.get("features"), dict):
        raise DatasetError(f"{path} has no 'features' table; restore it from a copy of the dataset")
    fps = info.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise DatasetError(f"{path}: 'fps' is {fps!r}; it must be the positive frame rate the data was recorded at")
    for name, spec in info["features"].items():
        if not (isinstance(spec, dict) and isinstance(spec.get("dtype"), str) and isinstance(spec.get("shape"), list)
                and all(isinstance(n, int) and n > 0 for n in spec["shape"])):
            raise DatasetError(f"{path}: feature {name!r} is {spec!r}; each feature needs a 'dtype' and a 'shape' "
                               "list of positive integers")
    return info


def read_tasks(root: str | Path) -> dict[int, str]:
    """task_index -> task text, from LeRobot's layout (the text is the pandas index, stored as a
    ``task`` or ``__index_level_0__`` column) or robot_rl's older one (a plain ``task`` column)."""
    path = Path(root) / TASKS_PATH
    if not path.exists():
        return {}
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise DatasetError(f"{path} is unreadable ({str(error).splitlines()[0]}); restore it from a copy") from None
    text = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
    if text is None or "task_index" not in table.column_names:
        raise DatasetError(f"{path} has columns {table.column_names}; expected task_index and the task text")
    return dict(zip(table.column("task_index").to_pylist(), table.column(text).to_pylist(), strict=True))


def read_episodes(root: str | Path, stats: bool = False) -> list[dict[str, Any]]:
    """One dict per episode from every meta/episodes/chunk-*/file-*.parquet, in episode order;
    the ``stats/*`` columns only with ``stats``."""
    root = Path(root)
    rows: list[dict[str, Any]] = []
    for path in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        try:
            names = pq.read_schema(path).names
            table = pq.read_table(path, columns=[n for n in names if stats or not n.startswith("stats/")])
        except (OSError, pa.ArrowInvalid) as error:
            raise DatasetError(f"{path.relative_to(root)} is unreadable ({str(error).splitlines()[0]}); restore it "
                               "from a copy of the dataset") from None
        missing = [c for c in ("episode_index", "data/chunk_index", "data/file_index") if c not in names]
        if missing:
            raise DatasetError(f"{path.relative_to(root)} lacks column {missing[0]!r}; it is not LeRobot v3 episode "
                               "metadata")
        rows += table.to_pylist()
    return sorted(rows, key=lambda e: e["episode_index"])


def data_file(episode: dict[str, Any]) -> str:
    """The data file (relative to the dataset root) holding ``episode``'s frames."""
    return DATA_PATH.format(chunk_index=episode["data/chunk_index"], file_index=episode["data/file_index"])


def episodes_text(indices: Sequence[int]) -> str:
    """``episode 3``, ``episodes 0, 1`` or ``episodes 0-599``, for messages."""
    indices = list(indices)
    if len(indices) == 1:
        return f"episode {indices[0]}"
    if len(indices) > 3 and indices == list(range(indices[0], indices[0] + len(indices))):
        return f"episodes {indices[0]}-{indices[-1]}"
    return "episodes " + ", ".join(str(i) for i in indices)


def episode_rows(table: pa.Table, episodes: Sequence[dict[str, Any]], where: str) -> list[np.ndarray]:
    """Row positions int64[L_e] in the data file ``table`` of each episode it holds, each row once:
    the rows whose ``index`` lies in [dataset_from_index, dataset_to_index) (LeRobot v3 packs
    many episodes per file). Metadata without index ranges falls back to ``episode_index``.
    A range the file does not hold exactly raises a :class:`DatasetError` naming ``where``."""
    index = table.column("index").to_numpy() if "index" in table.column_names else None
    owner = table.column("episode_index").to_numpy() if "episode_index" in table.column_names else None
    ordered = index is not None and bool((np.diff(index) > 0).all())
    out = []
    for e in episodes:
        number = e["episode_index"]
        low, high = e.get("dataset_from_index"), e.get("dataset_to_index")
        if index is not None and low is not None and high is not None:
            if ordered:
                rows = np.arange(*np.searchsorted(index, [low, high]))
            else:
                rows = np.nonzero((index >= low) & (index < high))[0]
            expected = high - low
        elif owner is not None:
            rows, expected = np.nonzero(owner == number)[0], e.get("length", None)
        else:
            raise DatasetError(f"{where}: neither meta/episodes nor the file locate episode {number} (no "
                               "dataset_from_index/dataset_to_index and no episode_index column)")
        span = f" (index {low} to {high - 1})" if index is not None and low is not None and high is not None else ""
        if expected is not None and len(rows) != expected:
            raise DatasetError(f"{where}: meta/episodes gives episode {number} {expected} frames{span} but the file "
                               f"holds {len(rows)} of them; the file and meta/episodes disagree: restore both from "
                               "one copy of the dataset")
        if owner is not None and len(rows) and (owner[rows] != number).any():
            other = int(owner[rows][owner[rows] != number][0])
            raise DatasetError(f"{where}: the frames meta/episodes gives episode {number}{span} include frames of "
                               f"episode {other}; restore the dataset from one copy")
        out.append(rows)
    return out


def read_frames(root: str | Path) -> pa.Table:
    """Every frame of the dataset, in episode order, each read once."""
    root = Path(root)
    episodes = read_episodes(root)
    files: dict[str, list[dict[str, Any]]] = {}
    for e in episodes:
        files.setdefault(data_file(e), []).append(e)
    parts: dict[int, pa.Table] = {}
    for name, held in files.items():
        table = pq.read_table(root / name)
        where = f"{name} ({episodes_text([e['episode_index'] for e in held])})"
        for e, rows in zip(held, episode_rows(table, held, where), strict=True):
            parts[e["episode_index"]] = table.take(rows)
    return pa.concat_tables([parts[e["episode_index"]] for e in episodes]) if parts else pa.table({})
