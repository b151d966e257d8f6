"""The LeRobot v3 writer: layout and metadata, values read back with pyarrow, and a crash that
loses only the open episode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from robot_rl.data.lerobot import Feature, LeRobotWriter, read_episodes, read_frames, read_info

pytestmark = pytest.mark.ros

FEATURES = {"observation.state": Feature("float32", (3,), ("a", "b", "c")), "action": Feature("float32", (2,)),
            "intervention": Feature("bool", (1,)), "next.reward": Feature("float32", (1,)),
            "observation.images.front": Feature("image", (4, 5, 3))}


def frame(i: int) -> dict:
    return {"observation.state": np.arange(3) + i, "action": [i, -i], "intervention": i % 2 == 1,
            "next.reward": float(i), "observation.images.front": np.full((4, 5, 3), i, np.uint8)}


def test_episodes_are_durable_and_read_back(tmp_path: Path) -> None:
    writer = LeRobotWriter(tmp_path / "ds", fps=10, features=FEATURES, robot_type="panda")
    for i in range(3):
        writer.add_frame(frame(i))
    assert writer.end_episode("reach") == 0
    for i in range(3, 5):
        writer.add_frame(frame(i))
    assert writer.end_episode("reach") == 1
    writer.add_frame(frame(9))  # the process dies here, before the episode ends

    root = tmp_path / "ds"
    info = read_info(root)
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 2 and info["total_frames"] == 5
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["features"]["observation.images.front"]["dtype"] == "image"
    episodes = read_episodes(root)
    assert [(e["length"], e["dataset_from_index"], e["dataset_to_index"]) for e in episodes] == [(3, 0, 3), (2, 3, 5)]
    frames = read_frames(root).to_pydict()
    assert frames["index"] == list(range(5)) and frames["episode_index"] == [0, 0, 0, 1, 1]
    assert frames["frame_index"] == [0, 1, 2, 0, 1] and frames["timestamp"] == pytest.approx([0, 0.1, 0.2, 0, 0.1])
    assert frames["intervention"] == [False, True, False, True, False]
    assert frames["action"][4] == [4.0, -4.0]
    assert pq.read_table(root / "meta" / "tasks.parquet").to_pydict() == {"task_index": [0], "task": ["reach"]}
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert stats["observation.state"]["max"] == [4.0, 5.0, 6.0] and stats["action"]["count"] == [5]
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert not list(root.rglob("*.tmp"))


def test_refuses_to_overwrite_a_dataset(tmp_path: Path) -> None:
    LeRobotWriter(tmp_path, fps=10, features=FEATURES)
    with pytest.raises(FileExistsError, match="already holds a LeRobot dataset"):
        LeRobotWriter(tmp_path, fps=10, features=FEATURES)
