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

Each data file is read once and cut into its episodes by their index ranges in the episodes
metadata (LeRobot v3 packs many episodes per file). A data file that cannot be read (a truncated
parquet after a crash, say) is reported once with the episodes it holds, as a warning and in
``ds.problems``; the other episodes still load. A column whose type or size differs from
meta/info.json, or a numeric column holding NaN or infinity when it is read, is a
:class:`DatasetError` naming the file, column, episode (and frame).
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

from robot_rl.data.lerobot import (
    INDEX_FEATURES,
    STATS,
    DatasetError,
    Feature,
    LeRobotWriter,
    Stats,
    data_file,
    episode_rows,
    episodes_text,
    first_nonfinite,
    read_episodes,
    read_info,
    read_tasks,
)

__all__ = ["Dataset", "DatasetError", "Transitions", "decode_image", "filter_episodes", "merge"]
SUPPORTED_DTYPES = ("float32", "float64", "int64", "bool", "image")


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
    names = spec.get("names") if isinstance(spec.get("names"), list) and spec["dtype"] != "image" else None
    return Feature(spec["dtype"], tuple(spec["shape"]), tuple(names) if names else None)


def _listed(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def _fits(kind: pa.DataType, feature: Feature) -> bool:
    """Whether arrow values of type ``kind`` can be read as ``feature`` (a cast may follow)."""
    if feature.dtype == "image":
        return pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0
    listed = _listed(kind)
    if feature.shape != (1,) and not listed:
        return False
    value = kind.value_type if listed else kind
    if feature.dtype == "bool":
        return pa.types.is_boolean(value) or pa.types.is_integer(value)
    if feature.dtype == "int64":
        return pa.types.is_integer(value)
    return pa.types.is_floating(value) or pa.types.is_integer(value)


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
        odd = {n: s["dtype"] for n, s in self.info["features"].items() if s["dtype"] not in SUPPORTED_DTYPES}
        if odd:
            name, dtype = next(iter(odd.items()))
            raise DatasetError(f"{self.root / 'meta' / 'info.json'}: column {name!r} has dtype {dtype!r}, which "
                               f"robot_rl does not read ({', '.join(SUPPORTED_DTYPES)}); store it as one of these "
                               "(videos as image frames)")
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
        self.tasks = read_tasks(self.root)
        """task_index -> task text (the goal sentence)."""
        self.problems: list[str] = []
        """One message per data file that could not be read."""
        wanted = None if episodes is None else set(int(e) for e in episodes)
        files: dict[str, list[dict[str, Any]]] = {}
        for e in read_episodes(self.root):
            if wanted is None or e["episode_index"] in wanted:
                files.setdefault(data_file(e), []).append(e)
        parts: dict[int, tuple[dict[str, Any], pa.Table, str, np.ndarray]] = {}
        for name, held in files.items():
            ids = [e["episode_index"] for e in held]
            try:
                table = pq.read_table(self.root / name)
            except (OSError, pa.ArrowInvalid) as error:
                verb = "is unreadable and was" if len(ids) == 1 else "are unreadable and were"
                message = f"{episodes_text(ids)} ({self.root / name}) {verb} skipped: {str(error).splitlines()[0]}"
                self.problems.append(message)
                warnings.warn(message, stacklevel=2)
                continue
            where = f"{self.root / name} ({episodes_text(ids)})"
            table = self._conform(table, where)
            rows = episode_rows(table, held, where)
            for e, r in zip(held, rows, strict=True):
                contiguous = len(r) == 0 or r[-1] - r[0] + 1 == len(r)
                parts[e["episode_index"]] = (e, table.slice(r[0], len(r)) if contiguous and len(r) else table.take(r),
                                             name, r)
        ordered = [parts[i] for i in sorted(parts)]
        self.episodes = [e for e, *_ in ordered]
        self._origin = [(name, rows) for _, _, name, rows in ordered]  # per loaded episode: its file, its rows there
        self.table = pa.concat_tables([t for _, t, *_ in ordered]) if ordered else None
        self._columns: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return 0 if self.table is None else self.table.num_rows

    def _conform(self, table: pa.Table, where: str) -> pa.Table:
        """The columns of a data file that meta/info.json declares, in its order and types (other
        columns are left out, so files written by other programs still concatenate)."""
        columns = []
        for name, feature in self.features.items():
            if name not in table.column_names:
                raise DatasetError(f"{where}: missing column {name!r} declared in meta/info.json")
            column = table.column(name).combine_chunks()
            declared = f"{feature.dtype}{list(feature.shape)}"
            if not _fits(column.type, feature):
                raise DatasetError(f"{where}: column {name!r} holds {column.type} values but meta/info.json declares "
                                   f"{declared}; the file was written or edited by another program: rewrite the "
                                   "column with numbers of that shape, or correct meta/info.json")
            size = 1 if feature.dtype == "image" else int(np.prod(feature.shape))
            if _listed(column.type):
                lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
                if len(column) and (lengths != size).any():
                    bad = int(lengths[lengths != size][0])
                    raise DatasetError(f"{where}: column {name!r} has {bad} values per frame but meta/info.json "
                                       f"declares shape {list(feature.shape)}; the file belongs to another dataset")
                if feature.shape == (1,):
                    column = pc.list_flatten(column)
            try:
                columns.append(column.cast(feature.arrow_type()))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise DatasetError(f"{where}: column {name!r} ({column.type}) cannot be read as {declared} "
                                   f"({str(error).splitlines()[0]}); rewrite the column or correct meta/info.json") \
                    from None
        return pa.table(columns, names=list(self.features))

    # -- columns -------------------------------------------------------------------------------

    def column(self, name: str) -> np.ndarray:
        """Numeric column ``name`` as an array [N, *shape] (scalars: [N]). NaN or infinity in it
        is a :class:`DatasetError` naming the file, episode and frame."""
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
            bad = first_nonfinite(values)
            if bad is not None:
                raise DatasetError(f"{self._locate(bad[0])}: column {name!r} is {bad[1]} (NaN or infinity in "
                                   f"{self._spread(values)}); drop those episodes (filter_episodes, or episodes=) or "
                                   "rewrite the column")
            self._columns[name] = values
        return self._columns[name]

    def _locate(self, row: int) -> str:
        """``ROOT/data/...parquet, episode E, frame F`` of table row ``row``."""
        start = 0
        for e, (name, rows) in zip(self.episodes, self._origin, strict=True):
            if row < start + len(rows):
                return f"{self.root / name}, episode {e['episode_index']}, frame {row - start}"
            start += len(rows)
        return f"{self.root}, row {row}"

    def _spread(self, values: np.ndarray) -> str:
        """``N frames of M episodes``: how many frames of float[N, ...] ``values`` are not finite."""
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        episodes = np.unique(self.table.column("episode_index").to_numpy()[bad]) if "episode_index" in \
            self.table.column_names else []
        frames = int(bad.sum())
        return f"{frames} frame{'s' * (frames != 1)} of {len(episodes)} episode{'s' * (len(episodes) != 1)}"

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
        """Add float32 column ``name`` with one value (or vector) per frame: float[N] or float[N, D].
        Each data file is rewritten atomically, then the per-episode stats (meta/episodes),
        meta/stats.json and last meta/info.json. Every episode of the dataset must be loaded; values
        must be finite (NaN or infinity is refused, naming the episode and frame, before anything is
        written)."""
        values = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float32)
        if len(values) != len(self):
            raise DatasetError(f"column {name!r}: {len(values)} values for {len(self)} frames; give one per frame")
        if name in self.features and not overwrite:
            raise DatasetError(f"{self.root} already has column {name!r}; choose another name or overwrite it")
        if self.problems or len(self.episodes) != self.info["total_episodes"]:
            raise DatasetError(f"{self.root}: add a column only with every episode loaded and readable")
        bad = first_nonfinite(values)
        if bad is not None:
            raise DatasetError(f"{self._locate(bad[0])}: new column {name!r} is {bad[1]} (NaN or infinity in "
                               f"{self._spread(values)}); nothing was written: fix what computed the values")
        shape = values.shape[1:] or (1,)
        feature = Feature("float32", tuple(shape))
        per_file: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        episode_stats: dict[int, dict[str, list[Any]]] = {}
        total = Stats()
        start = 0
        for e, (file, rows) in zip(self.episodes, self._origin, strict=True):
            part = values[start:start + len(rows)]
            start += len(rows)
            per_file.setdefault(file, []).append((rows, part))
            stats = Stats()
            stats.add(part.reshape(len(part), *shape))
            total.merge(stats)
            episode_stats[e["episode_index"]] = stats.as_dict()
        rewritten = {}
        for file, parts in per_file.items():  # check every file before writing any
            table = pq.read_table(self.root / file)
            column = np.zeros((table.num_rows, *values.shape[1:]), dtype=np.float32)
            covered = np.zeros(table.num_rows, dtype=bool)
            for rows, part in parts:
                column[rows], covered[rows] = part, True
            if not covered.all():
                raise DatasetError(f"{self.root / file}: {int((~covered).sum())} of its rows belong to no episode of "
                                   "meta/episodes, so the new column has no values for them; rebuild the dataset "
                                   "with filter_episodes or merge first")
            array = LeRobotWriter._column(feature, column)
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, array)
            else:
                table = table.append_column(name, array)
            rewritten[file] = table
        for file, table in rewritten.items():
            _replace(self.root / file, lambda p, t=table: pq.write_table(t, p))
        self._write_column_stats(name, episode_stats, total)
        self.info["features"][name] = feature.info()
        _replace(self.root / "meta" / "info.json", lambda p: p.write_text(json.dumps(self.info, indent=2)))
        self.features[name] = feature
        new = LeRobotWriter._column(feature, values)
        if name in self.table.column_names:
            self.table = self.table.set_column(self.table.column_names.index(name), name, new)
        else:
            self.table = self.table.append_column(name, new)
        self._columns.pop(name, None)

    def _write_column_stats(self, name: str, episode_stats: dict[int, dict[str, list[Any]]], total: Stats) -> None:
        """Column ``name``'s ``stats/<name>/*`` in every episodes metadata file, and its entry in meta/stats.json."""
        for path in sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
            table = pq.read_table(path)
            indices = table.column("episode_index").to_pylist()
            for stat in STATS:
                key = f"stats/{name}/{stat}"
                array = pa.array([episode_stats[i][stat] for i in indices])
                if key in table.column_names:
                    table = table.set_column(table.column_names.index(key), key, array)
                else:
                    table = table.append_column(key, array)
            _replace(path, lambda p, t=table: pq.write_table(t, p))
        path = self.root / "meta" / "stats.json"
        stats = json.loads(path.read_text()) if path.exists() else {}
        stats[name] = total.as_dict()
        _replace(path, lambda p: p.write_text(json.dumps(stats, indent=2)))


def _replace(path: Path, write: Any) -> None:
    """Write ``path`` through a temporary file, so a crash leaves the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


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
        tasks = ds.tasks
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
