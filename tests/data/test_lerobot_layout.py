"""Datasets as LeRobot v3 writes them (several episodes per data file, the task text as the
tasks table's pandas index), the metadata our writer produces beside LeRobot's, and the errors for
non-finite values, mistyped columns and a broken meta/info.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robot_rl.data.dataset import Dataset, DatasetError, merge
from robot_rl.data.lerobot import Feature, LeRobotWriter, read_frames, read_tasks
from robot_rl.data.png import encode_png

GOAL = "push the cube to the target"
# Episodes 0 and 1 share data file 0, episodes 2, 3 and 4 share data file 1 (as LeRobot packs them).
FILES = {0: (4, 6), 1: (3, 2, 5)}
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def lerobot_dataset(root: Path, tasks_index: str = "task") -> np.ndarray:
    """A dataset laid out as LeRobot v3 writes it (built with pyarrow from its documented layout);
    returns observation.state float32[20, 3], row i being global frame i (= i + 0.5 * episode)."""
    state = np.zeros((sum(sum(lengths) for lengths in FILES.values()), 3), np.float32)
    episodes, start, episode = [], 0, 0
    for file, lengths in FILES.items():
        columns: dict[str, list] = {k: [] for k in ("observation.state", "observation.images.front", "action",
                                                    "next.reward", "next.done", "timestamp", "frame_index",
                                                    "episode_index", "index", "task_index")}
        for length in lengths:
            for t in range(start, start + length):
                state[t] = [t, -t, 0.5 * episode]
                columns["observation.state"].append(state[t].tolist())
                columns["observation.images.front"].append(
                    {"bytes": encode_png(np.full((2, 2, 3), t, np.uint8)), "path": None})
                columns["action"].append([float(t)] * 2)
                columns["next.reward"].append(float(t == start + length - 1))
                columns["next.done"].append(t == start + length - 1)
                columns["timestamp"].append((t - start) / 10)
                columns["frame_index"].append(t - start)
                columns["episode_index"].append(episode)
                columns["index"].append(t)
                columns["task_index"].append(0)
            episodes.append({"episode_index": episode, "tasks": [GOAL], "length": length, "data/chunk_index": 0,
                             "data/file_index": file, "dataset_from_index": start, "dataset_to_index": start + length,
                             "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                             "stats/action/min": [float(start)] * 2, "stats/action/count": [length]})
            start += length
            episode += 1
        schema = pa.schema([("observation.state", pa.list_(pa.float32())), ("observation.images.front", IMAGE),
                            ("action", pa.list_(pa.float32())), ("next.reward", pa.float32()),
                            ("next.done", pa.bool_()), ("timestamp", pa.float32()), ("frame_index", pa.int64()),
                            ("episode_index", pa.int64()), ("index", pa.int64()), ("task_index", pa.int64())])
        path = root / f"data/chunk-000/file-{file:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns, schema=schema), path)
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episodes), path)
    scalar = {"shape": [1], "names": None}
    info = {"codebase_version": "v3.0", "robot_type": "so101", "total_episodes": len(episodes),
            "total_frames": start, "total_tasks": 1, "chunks_size": 1000, "fps": 10,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "features": {"observation.state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]},
                         "observation.images.front": {"dtype": "image", "shape": [2, 2, 3],
                                                      "names": ["height", "width", "channels"]},
                         "action": {"dtype": "float32", "shape": [2], "names": None},
                         "next.reward": {"dtype": "float32", **scalar}, "next.done": {"dtype": "bool", **scalar},
                         "timestamp": {"dtype": "float32", **scalar}, "frame_index": {"dtype": "int64", **scalar},
                         "episode_index": {"dtype": "int64", **scalar}, "index": {"dtype": "int64", **scalar},
                         "task_index": {"dtype": "int64", **scalar}}}
    (root / "meta/info.json").write_text(json.dumps(info))
    # pandas.DataFrame({"task_index": [0]}, index=pd.Index([GOAL], name="task")).to_parquet(...) stores the
    # index as a column named after it (an unnamed index as __index_level_0__) and lists it in the metadata.
    pandas = {"index_columns": [tasks_index], "columns": [{"name": "task_index", "field_name": "task_index"},
                                                         {"name": tasks_index, "field_name": tasks_index}]}
    tasks = pa.table({"task_index": [0], tasks_index: [GOAL]}).replace_schema_metadata(
        {b"pandas": json.dumps(pandas).encode()})
    pq.write_table(tasks, root / "meta/tasks.parquet")
    return state


def test_several_episodes_in_one_file_load_each_frame_once(tmp_path: Path) -> None:
    state = lerobot_dataset(tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    # 20 frames: before, each file was read once per episode it holds (2 * 10 + 3 * 10 = 50 rows).
    assert len(ds) == 20 and ds.problems == [] and ds.fps == 10.0
    assert ds.column("index").tolist() == list(range(20))
    assert ds.episode_index().tolist() == [0] * 4 + [1] * 6 + [2] * 3 + [3] * 2 + [4] * 5
    np.testing.assert_array_equal(ds.column("observation.state"), state)
    np.testing.assert_array_equal(ds.images("front").numpy()[:, 0, 0, 0], np.arange(20))
    t = ds.transitions(obs="observation.state")
    # Episode 0 ends at frame 3: its next_obs is itself, not episode 1's first frame (row 4).
    np.testing.assert_array_equal(t.next_obs[3].numpy(), state[3])
    np.testing.assert_array_equal(t.next_obs[4].numpy(), state[5])
    assert t.done.nonzero().flatten().tolist() == [3, 9, 12, 14, 19]
    assert ds.tasks == {0: GOAL}
    assert read_frames(tmp_path / "ds").column("index").to_pylist() == list(range(20))


def test_some_episodes_of_a_shared_file(tmp_path: Path) -> None:
    state = lerobot_dataset(tmp_path / "ds")
    ds = Dataset(tmp_path / "ds", episodes=[3, 1])
    assert ds.episode_index().tolist() == [1] * 6 + [3] * 2
    np.testing.assert_array_equal(ds.column("observation.state"), state[np.r_[4:10, 13:15]])


def test_task_text_under_an_unnamed_pandas_index(tmp_path: Path) -> None:
    lerobot_dataset(tmp_path / "ds", tasks_index="__index_level_0__")
    assert read_tasks(tmp_path / "ds") == {0: GOAL}


def test_add_column_to_shared_files_and_merge(tmp_path: Path) -> None:
    lerobot_dataset(tmp_path / "ds")
    values = np.arange(20, dtype=np.float32) * 2
    Dataset(tmp_path / "ds").add_column("next.reward.learned", values)
    again = Dataset(tmp_path / "ds")
    np.testing.assert_array_equal(again.column("next.reward.learned"), values)
    # Each data file holds exactly its own rows' values; the episode stats cover each episode.
    assert pq.read_table(tmp_path / "ds/data/chunk-000/file-001.parquet").column(
        "next.reward.learned").to_pylist() == values[10:].tolist()
    meta = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert meta["stats/next.reward.learned/max"] == [[6.0], [18.0], [24.0], [28.0], [38.0]]
    assert meta["stats/next.reward.learned/count"] == [[4], [6], [3], [2], [5]]
    assert meta["stats/action/min"][1] == [4.0, 4.0]  # LeRobot's own stats columns are kept
    stats = json.loads((tmp_path / "ds/meta/stats.json").read_text())
    assert stats["next.reward.learned"]["mean"] == [19.0] and stats["next.reward.learned"]["count"] == [20]
    merged = Dataset(merge([tmp_path / "ds"], tmp_path / "copy"))
    assert len(merged) == 20 and merged.tasks == {0: GOAL}
    np.testing.assert_array_equal(merged.column("next.reward.learned"), values)


def test_range_the_file_does_not_hold_is_named(tmp_path: Path) -> None:
    lerobot_dataset(tmp_path / "ds")
    path = tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet"
    meta = pq.read_table(path).to_pylist()
    meta[1]["dataset_to_index"] = 12  # episode 1 claims two frames of file 1
    pq.write_table(pa.Table.from_pylist(meta), path)
    with pytest.raises(DatasetError, match=r"file-000.parquet \(episodes 0, 1\): meta/episodes gives episode 1 8 "
                                           r"frames \(index 4 to 11\) but the file holds 6"):
        Dataset(tmp_path / "ds")


def write_one(root: Path, rewards: list[float], **kwargs) -> LeRobotWriter:
    writer = LeRobotWriter(root, fps=kwargs.pop("fps", 20), robot_type="panda",
                           features={"action": Feature("float32", (2,)), "next.reward": Feature("float32", (1,)),
                                     "observation.images.front": Feature("image", (2, 3, 3))})
    for r in rewards:
        writer.add_frame({"action": [r, 1.0], "next.reward": r,
                          "observation.images.front": np.full((2, 3, 3), 51, np.uint8)})
    return writer


def test_written_metadata_is_lerobots(tmp_path: Path) -> None:
    writer = write_one(tmp_path / "ds", [1.0, 3.0], fps=20.0)
    writer.end_episode(GOAL)
    writer.add_frame({"action": [5.0, 1.0], "next.reward": 5.0,
                      "observation.images.front": np.full((2, 3, 3), 102, np.uint8)})
    writer.end_episode(GOAL)
    info = json.loads((tmp_path / "ds/meta/info.json").read_text())
    assert info["fps"] == 20 and isinstance(info["fps"], int)
    tasks = pq.read_table(tmp_path / "ds/meta/tasks.parquet")
    assert tasks.to_pydict() == {"task_index": [0], "task": [GOAL]}
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]  # LeRobot's tasks.iloc[i].name
    meta = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert meta["stats/next.reward/mean"] == [[2.0], [5.0]] and meta["stats/next.reward/std"] == [[1.0], [0.0]]
    assert meta["stats/action/max"] == [[3.0, 1.0], [5.0, 1.0]] and meta["stats/action/count"] == [[2], [1]]
    assert np.allclose(meta["stats/observation.images.front/mean"][1], np.full((3, 1, 1), 0.4))
    assert meta["stats/index/min"] == [[0.0], [2.0]]
    stats = json.loads((tmp_path / "ds/meta/stats.json").read_text())
    assert stats["next.reward"]["mean"] == [3.0] and stats["next.reward"]["count"] == [3]
    assert np.allclose(stats["observation.images.front"]["mean"], np.full((3, 1, 1), (51 * 2 + 102) / 3 / 255))
    with pytest.raises(DatasetError, match=r"fps 33.3 is not a whole number"):
        LeRobotWriter(tmp_path / "odd", fps=33.3, features={"action": Feature("float32", (2,))})


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_value_is_refused_when_written(tmp_path: Path, value: float) -> None:
    writer = write_one(tmp_path / "ds", [0.5, 0.25])
    writer.end_episode(GOAL)
    writer.add_frame({"action": [0.0, 0.0], "next.reward": 0.0,
                      "observation.images.front": np.zeros((2, 3, 3), np.uint8)})
    with pytest.raises(DatasetError, match=rf"episode 1, frame 1: column 'action' holds {value}"):
        writer.add_frame({"action": [0.0, value], "next.reward": 0.0,
                          "observation.images.front": np.zeros((2, 3, 3), np.uint8)})
    with pytest.raises(DatasetError, match=r"episode 1, frame 1: column 'next.reward' is 'high', not float32"):
        writer.add_frame({"action": [0.0, 0.0], "next.reward": "high",
                          "observation.images.front": np.zeros((2, 3, 3), np.uint8)})
    writer.end_episode(GOAL)
    ds = Dataset(tmp_path / "ds")  # the refused frames are not written; everything else is
    assert ds.episode_index().tolist() == [0, 0, 1] and ds.column("next.reward").tolist() == [0.5, 0.25, 0.0]


def test_nonfinite_value_is_named_when_read(tmp_path: Path) -> None:
    lerobot_dataset(tmp_path / "ds")
    path = tmp_path / "ds/data/chunk-000/file-001.parquet"
    table = pq.read_table(path)
    rewards = table.column("next.reward").to_pylist()
    rewards[4] = rewards[7] = float("nan")  # file 1 rows 4 and 7: episode 3 frame 1, episode 4 frame 2
    pq.write_table(table.set_column(table.column_names.index("next.reward"), "next.reward",
                                    pa.array(rewards, pa.float32())), path)
    ds = Dataset(tmp_path / "ds")
    with pytest.raises(DatasetError, match=r"file-001.parquet, episode 3, frame 1: column 'next.reward' is nan "
                                           r"\(NaN or infinity in 2 frames of 2 episodes\)"):
        ds.transitions(obs="observation.state")
    assert len(Dataset(tmp_path / "ds", episodes=[0, 1, 2]).transitions(obs="observation.state")) == 13


def test_add_column_refuses_nonfinite_values(tmp_path: Path) -> None:
    lerobot_dataset(tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    values = np.zeros(20)
    values[11:] = np.nan  # episode 2 from its frame 1 on, and every frame of episodes 3 and 4
    with pytest.raises(DatasetError, match=r"episode 2, frame 1: new column 'next.reward.vlm' is nan \(NaN or "
                                           r"infinity in 9 frames of 3 episodes\); nothing was written"):
        ds.add_column("next.reward.vlm", values)
    assert "next.reward.vlm" not in Dataset(tmp_path / "ds").features
    assert "next.reward.vlm" not in pq.read_table(tmp_path / "ds/data/chunk-000/file-000.parquet").column_names


def test_string_column_is_named_with_file_and_episodes(tmp_path: Path) -> None:
    lerobot_dataset(tmp_path / "ds")
    path = tmp_path / "ds/data/chunk-000/file-001.parquet"
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.column_names.index("next.reward"), "next.reward",
                                    pa.array(["high"] * table.num_rows)), path)
    with pytest.raises(DatasetError) as error:
        Dataset(tmp_path / "ds")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path} (episodes 2, 3, 4): column 'next.reward' holds string values but "
                              "meta/info.json declares float32[1]")


def test_invalid_info_json_names_the_file(tmp_path: Path) -> None:
    lerobot_dataset(tmp_path / "ds")
    info = tmp_path / "ds/meta/info.json"
    text = info.read_text()
    info.write_text(text.replace('"fps": 10', '"fps": "ten"'))
    with pytest.raises(DatasetError, match=r"info.json: 'fps' is 'ten'"):
        Dataset(tmp_path / "ds")
    info.write_text("{" + text[1:].replace('"codebase_version"', "codebase_version", 1))
    with pytest.raises(DatasetError, match=rf"{info} is not valid JSON \(Expecting property name"):
        Dataset(tmp_path / "ds")
