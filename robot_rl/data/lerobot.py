"""LeRobot v3 datasets: write episode by episode, read back with pyarrow.

Layout (LeRobot ``codebase_version`` v3.0)::

    meta/info.json                                   features, fps, totals, path templates
    meta/stats.json                                  min/max/mean/std/count per feature
    meta/tasks.parquet                               task text -> task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode (length, data file, index range)
    data/chunk-{c:03d}/file-{f:03d}.parquet          frames

Each finished episode is written as its own data file and the metadata files are replaced
atomically after it, so a crash loses at most the episode being recorded. (LeRobot packs several
episodes per file to stay under ~100 MB; one per file is valid v3 and keeps every write final.)

    writer = LeRobotWriter(root, fps=20, features={"action": Feature("float32", (8,))})
    writer.add_frame({"action": a, ...}); writer.end_episode("reach the ball")
    table = read_frames(root)                        # pyarrow.Table of every frame

Frames of robot_rl's datasets carry ``observation.policy`` (and ``observation.privileged`` in
simulation), camera images ``observation.images.<camera>``, the executed ``action``, the policy's
``policy_action`` and the ``intervention`` flag (:func:`transition_features`); rewards, success and
ground-truth progress are ``next.*`` columns. :mod:`robot_rl.data.dataset` reads them as transitions.
"""

from __future__ import annotations

import json
import os
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
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")


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


class _Stats:
    """Running min/max/mean/std of one feature (per channel for images, scaled to [0, 1])."""

    def __init__(self) -> None:
        self.count, self.sum, self.sumsq, self.min, self.max = 0, 0.0, 0.0, None, None

    def add(self, values: np.ndarray) -> None:
        self.count += 1
        self.sum = self.sum + values
        self.sumsq = self.sumsq + values * values
        self.min = values if self.min is None else np.minimum(self.min, values)
        self.max = values if self.max is None else np.maximum(self.max, values)

    def as_json(self, image: bool) -> dict[str, Any]:
        mean = self.sum / self.count
        std = np.sqrt(np.maximum(self.sumsq / self.count - mean * mean, 0.0))
        shape = (3, 1, 1) if image else np.shape(mean)

        def out(x: Any) -> Any:
            return np.reshape(np.asarray(x, dtype=np.float64), shape).tolist()

        return {"min": out(self.min), "max": out(self.max), "mean": out(mean), "std": out(std), "count": [self.count]}


class LeRobotWriter:
    """Writes frames of one episode at a time; ``end_episode`` makes the episode durable."""

    def __init__(self, root: str | Path, fps: float, features: dict[str, Feature],
                 robot_type: str | None = None, extra_info: dict[str, Any] | None = None) -> None:
        """``extra_info`` is stored in ``meta/info.json`` under ``"robot_rl"`` (e.g. the sim task name)."""
        self.root = Path(root)
        if (self.root / "meta" / "info.json").exists():
            raise FileExistsError(f"{self.root} already holds a LeRobot dataset; record into a new directory")
        clash = set(features) & set(INDEX_FEATURES)
        if clash:
            raise ValueError(f"features {sorted(clash)} are written by the dataset itself; rename them")
        self.root.mkdir(parents=True, exist_ok=True)
        self.fps, self.robot_type, self.extra_info = fps, robot_type, dict(extra_info or {})
        self.features = {**features, **_index_features()}
        self.schema = pa.schema([(name, f.arrow_type()) for name, f in self.features.items()])
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict[str, Any]] = []
        self.total_frames = 0
        self._frames: list[dict[str, Any]] = []
        self._stats = {name: _Stats() for name in self.features}
        self._write_meta()

    def add_frame(self, frame: dict[str, Any]) -> None:
        """One step: a value for every feature given to the constructor (arrays in their shape)."""
        missing = [name for name in self.features if name not in frame and name not in INDEX_FEATURES]
        if missing:
            raise KeyError(f"frame lacks features {missing}")
        self._frames.append(frame)

    def end_episode(self, task: str = "") -> int | None:
        """Write the open episode (if it has frames); returns its index."""
        if not self._frames:
            return None
        episode = len(self.episodes)
        task_index = self.tasks.setdefault(task, len(self.tasks))
        start = self.total_frames
        columns: dict[str, list[Any]] = {name: [] for name in self.features}
        for i, frame in enumerate(self._frames):
            row = {**frame, "timestamp": i / self.fps, "frame_index": i, "episode_index": episode,
                   "index": start + i, "task_index": task_index}
            for name, feature in self.features.items():
                columns[name].append(self._cell(name, feature, row[name]))
        chunk, file = divmod(episode, CHUNK_SIZE)
        path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        table = pa.table(columns, schema=self.schema)
        _atomic_write(path, lambda p: pq.write_table(table, p))
        self.total_frames += len(self._frames)
        self.episodes.append({
            "episode_index": episode, "tasks": [task], "length": len(self._frames),
            "data/chunk_index": chunk, "data/file_index": file,
            "dataset_from_index": start, "dataset_to_index": self.total_frames,
            "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
        })
        self._frames = []
        self._write_meta()
        return episode

    def _cell(self, name: str, feature: Feature, value: Any) -> Any:
        if feature.dtype == "image":
            rgb = np.asarray(value, dtype=np.uint8)
            self._stats[name].add(rgb.reshape(-1, 3).mean(axis=0) / 255.0)
            return {"bytes": encode_png(rgb), "path": None}
        array = np.asarray(value, dtype=np.float64 if feature.dtype != "bool" else bool).reshape(feature.shape)
        self._stats[name].add(array.astype(np.float64))
        if feature.shape == (1,):
            return array.item()
        return array.tolist()

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
        stats = {name: s.as_json(self.features[name].dtype == "image") for name, s in self._stats.items() if s.count}
        _atomic_write(meta / "stats.json", lambda p: p.write_text(json.dumps(stats, indent=2)))
        tasks = pa.table({"task_index": list(self.tasks.values()), "task": list(self.tasks)},
                         schema=pa.schema([("task_index", pa.int64()), ("task", pa.string())]))
        _atomic_write(meta / "tasks.parquet", lambda p: pq.write_table(tasks, p))
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


def read_info(root: str | Path) -> dict[str, Any]:
    return json.loads((Path(root) / "meta" / "info.json").read_text())


def read_frames(root: str | Path) -> pa.Table:
    """Every frame of the dataset, ordered by global index."""
    root = Path(root)
    episodes = pq.read_table(root / EPISODES_PATH).to_pylist() if (root / EPISODES_PATH).exists() else []
    tables = [pq.read_table(root / DATA_PATH.format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"]))
              for e in sorted(episodes, key=lambda e: e["episode_index"])]
    return pa.concat_tables(tables) if tables else pa.table({})


def read_episodes(root: str | Path) -> list[dict[str, Any]]:
    return pq.read_table(Path(root) / EPISODES_PATH).to_pylist()
