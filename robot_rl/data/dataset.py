"""Read robot_rl's LeRobot v3 datasets as transitions and image batches; merge, filter, add columns.

    ds = Dataset(root, require=("observation.policy", "action"), robot="panda")
    batch = ds.transitions(obs="observation.policy", reward="next.reward")
    batch.obs, batch.action, batch.reward, batch.next_obs, batch.done    # float32[N, P] ... bool[N]
    for index, images in ds.image_batches("front", batch_size=256):      # int64[B], uint8[B, H, W, 3]
        ...
    ds.add_column("next.reward.preference", rewards)                     # float[N], written into the files
    merge([a, b], out); filter_episodes(a, out, keep=[0, 3, 4])

Transitions: frame t of an episode is (obs_t, action_t, reward_t = ``next.reward`` of frame t);
next_obs is frame t+1's observation. The last frame of an episode has no successor in the
dataset: its next_obs is its own observation, which matters only when the episode was cut off
by a time limit (``done`` is ``next.terminated``, or ``next.done`` in datasets without it).

A data file that cannot be read (a truncated parquet after a crash, say) is reported once with
the episode it holds, as a warning and in ``ds.problems``; the other episodes still load.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from robot_rl.data.lerobot import DATA_PATH, EPISODES_PATH, INDEX_FEATURES, Feature, LeRobotWriter, read_info


class DatasetError(ValueError):
    """A dataset that cannot be used as asked; the message names the column or file and the fix."""


@dataclass
class Transitions:
    """N transitions as tensors (CPU)."""

    obs: torch.Tensor
    """float32[N, P]"""
    action: torch.Tensor
    """float32[N, A]"""
    reward: torch.Tensor
    """float32[N]"""
    next_obs: torch.Tensor
    """float32[N, P]"""
    done: torch.Tensor
    """bool[N]: the episode ended in a terminal state (no bootstrapping)."""
    episode: torch.Tensor
    """int64[N]: episode index of each transition."""
    intervention: torch.Tensor
    """bool[N]: a person's action was executed instead of the policy's."""

    def __len__(self) -> int:
        return len(self.reward)

    def select(self, mask: torch.Tensor) -> Transitions:
        """The transitions where bool[N] ``mask`` holds (or of int64 indices)."""
        return Transitions(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def _feature(spec: dict[str, Any]) -> Feature:
    return Feature(spec["dtype"], tuple(spec["shape"]), tuple(spec["names"]) if spec.get("names") and
                   spec["dtype"] != "image" else None)


def decode_image(cell: dict[str, Any] | bytes) -> np.ndarray:
    """uint8[H, W, 3] of an image cell (``{"bytes": png, "path": ...}``)."""
    from PIL import Image

    data = cell["bytes"] if isinstance(cell, dict) else cell
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


class Dataset:
    """A LeRobot v3 dataset on disk, read into memory once (images stay PNG until asked for)."""

    def __init__(self, root: str | Path, require: Sequence[str] = (), robot: str | None = None,
                 episodes: Sequence[int] | None = None) -> None:
        """``require``: columns that must exist; ``robot``: the ``robot_type`` it must have;
        ``episodes``: load only these episode indices."""
        self.root = Path(root)
        if not (self.root / "meta" / "info.json").is_file():
            raise DatasetError(f"{self.root} is not a LeRobot dataset (no meta/info.json); "
                               "record one with `robot-rl record`")
        self.info = read_info(self.root)
        self.features = {name: _feature(spec) for name, spec in self.info["features"].items()}
        self.robot_type = self.info.get("robot_type")
        self.task = (self.info.get("robot_rl") or {}).get("task")
        """The simulation task it was recorded in, when it was recorded in simulation."""
        self.task_overrides: dict[str, Any] = dict((self.info.get("robot_rl") or {}).get("task_overrides") or {})
        """Fields of the task's config it was recorded with (e.g. ``{"action_space": "ee"}``)."""
        self.fps = float(self.info["fps"])
        if robot is not None and self.robot_type != robot:
            raise DatasetError(f"{self.root}: robot_type is {self.robot_type!r}, expected {robot!r}; "
                               "use a dataset recorded with that robot")
        missing = [c for c in require if c not in self.features]
        if missing:
            raise DatasetError(f"{self.root}: missing column {missing[0]!r} (it has: {', '.join(self.features)})")
        self.problems: list[str] = []
        """One message per episode that could not be read."""
        meta = pq.read_table(self.root / EPISODES_PATH).to_pylist() if (self.root / EPISODES_PATH).exists() else []
        wanted = None if episodes is None else set(int(e) for e in episodes)
        tables, self.episodes = [], []
        for e in sorted(meta, key=lambda e: e["episode_index"]):
            if wanted is not None and e["episode_index"] not in wanted:
                continue
            path = self.root / DATA_PATH.format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowInvalid) as error:
                message = (f"episode {e['episode_index']} ({path.relative_to(self.root)}) is unreadable and was "
                           f"skipped: {str(error).splitlines()[0]}")
                self.problems.append(message)
                warnings.warn(message, stacklevel=2)
                continue
            self._check_table(table, path, e["episode_index"])
            tables.append(table)
            self.episodes.append(e)
        self.table = pa.concat_tables(tables) if tables else None
        self._columns: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return 0 if self.table is None else self.table.num_rows

    def _check_table(self, table: pa.Table, path: Path, episode: int) -> None:
        where = f"{path.relative_to(self.root)} (episode {episode})"
        for name, feature in self.features.items():
            if name not in table.column_names:
                raise DatasetError(f"{where}: missing column {name!r} declared in meta/info.json")
            if feature.dtype == "image" or feature.shape == (1,) or table.num_rows == 0:
                continue
            lengths = pc.list_value_length(table.column(name)).to_numpy(zero_copy_only=False)
            size = int(np.prod(feature.shape))
            if (lengths != size).any():
                bad = int(lengths[lengths != size][0])
                raise DatasetError(f"{where}: column {name!r} has {bad} values per frame but meta/info.json "
                                   f"declares shape {list(feature.shape)}; the file belongs to another dataset")

    # -- columns -------------------------------------------------------------------------------

    def column(self, name: str) -> np.ndarray:
        """Numeric column ``name`` as an array [N, *shape] (scalars: [N])."""
        if name not in self.features:
            raise DatasetError(f"{self.root}: missing column {name!r} (it has: {', '.join(self.features)})")
        if name not in self._columns:
            feature = self.features[name]
            if feature.dtype == "image":
                raise DatasetError(f"column {name!r} holds images; read it with image_batches")
            if self.table is None:
                self._columns[name] = np.zeros((0, *feature.shape) if feature.shape != (1,) else (0,))
                return self._columns[name]
            col = self.table.column(name).combine_chunks()
            if feature.shape == (1,):
                values = np.array(col.to_numpy(zero_copy_only=False))
            else:
                values = np.array(col.flatten().to_numpy(zero_copy_only=False)).reshape(len(col), *feature.shape)
            self._columns[name] = values
        return self._columns[name]

    def episode_index(self) -> np.ndarray:
        """int64[N]: the episode of every frame."""
        return self.column("episode_index").astype(np.int64)

    def transitions(self, obs: str = "observation.policy", reward: str = "next.reward",
                    action: str = "action") -> Transitions:
        """Every frame as a transition (see the module docstring)."""
        done_column = "next.terminated" if "next.terminated" in self.features else "next.done"
        for name in (obs, reward, action, done_column):
            self.column(name)  # names the missing column
        o = torch.as_tensor(self.column(obs), dtype=torch.float32).reshape(len(self), -1)
        episode = torch.as_tensor(self.episode_index())
        last = torch.ones(len(episode), dtype=torch.bool)
        last[:-1] = episode[1:] != episode[:-1]
        next_obs = o.clone()
        next_obs[:-1] = torch.where(last[:-1, None], o[:-1], o[1:])
        a = torch.as_tensor(self.column(action), dtype=torch.float32).reshape(len(self), -1)
        intervention = (torch.as_tensor(self.column("intervention"), dtype=torch.bool)
                        if "intervention" in self.features else torch.zeros(len(o), dtype=torch.bool))
        return Transitions(obs=o, action=a, reward=torch.as_tensor(self.column(reward), dtype=torch.float32),
                           next_obs=next_obs, done=torch.as_tensor(self.column(done_column), dtype=torch.bool),
                           episode=episode, intervention=intervention)

    def image_batches(self, camera: str, batch_size: int = 256,
                      indices: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """(frame indices int64[B], images uint8[B, H, W, 3]) of ``camera`` (a camera name or the
        full column name), decoded batch by batch; ``indices`` picks frames (default: all)."""
        name = camera if camera.startswith("observation.images.") else f"observation.images.{camera}"
        if name not in self.features:
            prefix = "observation.images."
            cameras = [c.removeprefix(prefix) for c in self.features if c.startswith(prefix)]
            raise DatasetError(f"{self.root}: missing column {name!r}; cameras: {', '.join(cameras) or 'none'}")
        if self.table is None:
            return
        col = self.table.column(name).combine_chunks().field("bytes")
        order = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            images = np.stack([decode_image(col[int(i)].as_py()) for i in index])
            yield index, torch.from_numpy(images)

    def images(self, camera: str, indices: np.ndarray | None = None) -> torch.Tensor:
        """uint8[N, H, W, 3]: every (or the indexed) frame of ``camera``."""
        batches = [images for _, images in self.image_batches(camera, indices=indices)]
        h, w, _ = self.features[camera if camera.startswith("observation.") else f"observation.images.{camera}"].shape
        return torch.cat(batches) if batches else torch.zeros(0, h, w, 3, dtype=torch.uint8)

    # -- writing -------------------------------------------------------------------------------

    def add_column(self, name: str, values: np.ndarray | torch.Tensor, overwrite: bool = False) -> None:
        """Add float32 column ``name`` with one value (or vector) per frame, rewriting each data
        file atomically and then ``meta/info.json``. Every episode of the dataset must be loaded."""
        values = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float32)
        if len(values) != len(self):
            raise DatasetError(f"column {name!r}: {len(values)} values for {len(self)} frames; give one per frame")
        if name in self.features and not overwrite:
            raise DatasetError(f"{self.root} already has column {name!r}; choose another name or overwrite it")
        if self.problems or len(self.episodes) != self.info["total_episodes"]:
            raise DatasetError(f"{self.root}: add a column only with every episode loaded and readable")
        shape = values.shape[1:] or (1,)
        feature = Feature("float32", tuple(shape))
        start = 0
        tables = []
        for e in self.episodes:
            path = self.root / DATA_PATH.format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
            table = pq.read_table(path)
            part = values[start:start + table.num_rows]
            start += table.num_rows
            array = pa.array(part.reshape(-1) if shape == (1,) else list(part.reshape(len(part), -1)),
                             type=feature.arrow_type())
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, array)
            else:
                table = table.append_column(name, array)
            tmp = path.with_name(path.name + ".tmp")
            pq.write_table(table, tmp)
            tmp.replace(path)
            tables.append(table)
        self.info["features"][name] = feature.info()
        tmp = self.root / "meta" / "info.json.tmp"
        tmp.write_text(json.dumps(self.info, indent=2))
        tmp.replace(self.root / "meta" / "info.json")
        self.features[name] = feature
        self.table = pa.concat_tables(tables)
        self._columns.pop(name, None)


def _copy_episodes(sources: Sequence[tuple[Dataset, Sequence[int] | None]], out: str | Path) -> Path:
    first = sources[0][0]
    features = {n: f for n, f in first.features.items() if n not in INDEX_FEATURES}
    extra = dict(first.info.get("robot_rl") or {})
    keep_qualities = all("qualities" in (ds.info.get("robot_rl") or {}) for ds, _ in sources)
    extra["qualities"] = []  # per episode of the new dataset, when every source lists them
    writer = LeRobotWriter(out, first.fps, features, first.robot_type, extra)
    if not keep_qualities:
        del writer.extra_info["qualities"]
    tasks = {}
    for ds, keep in sources:
        if ds.table is None:
            continue
        task_table = pq.read_table(ds.root / "meta" / "tasks.parquet").to_pylist()
        tasks = {row["task_index"]: row["task"] for row in task_table}
        episode = ds.episode_index()
        wanted = set(int(e) for e in keep) if keep is not None else None
        rows = ds.table.select(list(features) + ["task_index"]).to_pylist()
        for e in ds.episodes:
            index = e["episode_index"]
            if wanted is not None and index not in wanted:
                continue
            frames = [rows[i] for i in np.nonzero(episode == index)[0]]
            if keep_qualities:
                writer.extra_info["qualities"].append(ds.info["robot_rl"]["qualities"][index])
            for frame in frames:
                writer.add_frame({k: (decode_image(v) if features[k].dtype == "image" else v)
                                  for k, v in frame.items() if k in features})
            writer.end_episode(tasks.get(frames[0]["task_index"], "") if frames else "")
    return Path(out)


def merge(datasets: Sequence[Dataset | str | Path], out: str | Path) -> Path:
    """Write the episodes of every dataset, in order, into a new dataset ``out``. They must
    have the same robot and the same columns with the same shapes."""
    loaded = [d if isinstance(d, Dataset) else Dataset(d) for d in datasets]
    if not loaded:
        raise DatasetError("merge: no datasets given")
    first = loaded[0]
    for ds in loaded[1:]:
        if ds.robot_type != first.robot_type:
            raise DatasetError(f"merge: {ds.root} has robot_type {ds.robot_type!r} but {first.root} has "
                               f"{first.robot_type!r}; merge datasets of one robot")
        for name in sorted(set(first.features) | set(ds.features)):
            if name not in ds.features or name not in first.features:
                holder, other = (first, ds) if name in first.features else (ds, first)
                raise DatasetError(f"merge: column {name!r} is in {holder.root} but missing in {other.root}")
            if ds.features[name].shape != first.features[name].shape or \
                    ds.features[name].dtype != first.features[name].dtype:
                raise DatasetError(f"merge: column {name!r} is {ds.features[name].dtype}"
                                   f"{list(ds.features[name].shape)} in {ds.root} but "
                                   f"{first.features[name].dtype}{list(first.features[name].shape)} in {first.root}")
    return _copy_episodes([(d, None) for d in loaded], out)


def filter_episodes(dataset: Dataset | str | Path, out: str | Path, keep: Sequence[int]) -> Path:
    """Write the episodes ``keep`` (episode indices) of ``dataset`` into a new dataset ``out``,
    renumbered from 0."""
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    known = {e["episode_index"] for e in ds.episodes}
    unknown = sorted(set(int(k) for k in keep) - known)
    if unknown:
        raise DatasetError(f"filter: episodes {unknown} are not in {ds.root} (it has {len(known)} readable episodes)")
    return _copy_episodes([(ds, keep)], out)
