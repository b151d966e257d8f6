"""robot_rl datasets: write -> read round trip, transitions, image batches, merge/filter, new
columns, and the errors for missing columns, mismatched shapes, other robots and truncated files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.data.dataset import Dataset, DatasetError, filter_episodes, merge
from robot_rl.data.lerobot import LeRobotWriter, transition_features

P, A = 5, 3


def make_dataset(root: Path, lengths=(4, 3, 5), robot: str = "panda", seed: int = 0) -> list[list[dict]]:
    """Random episodes written with the standard columns; returns the frames written."""
    rng = np.random.default_rng(seed)
    writer = LeRobotWriter(root, fps=20, features=transition_features(P, A, 7, {"front": (6, 8)}),
                           robot_type=robot, extra_info={"task": "panda_push",
                                                          "qualities": [f"q{i}" for i in range(len(lengths))]})
    episodes = []
    for length in lengths:
        frames = []
        for t in range(length):
            frame = {"observation.policy": rng.normal(size=P).astype(np.float32),
                     "observation.privileged": rng.normal(size=7).astype(np.float32),
                     "observation.images.front": rng.integers(0, 256, (6, 8, 3), dtype=np.uint8),
                     "action": rng.uniform(-1, 1, A).astype(np.float32),
                     "policy_action": rng.uniform(-1, 1, A).astype(np.float32),
                     "intervention": bool(rng.random() < 0.5), "next.reward": float(rng.normal()),
                     "next.terminated": t == length - 1 and length == 5, "next.done": t == length - 1,
                     "next.success": bool(rng.random() < 0.5), "observation.progress": float(t / length),
                     "next.progress": float((t + 1) / length)}
            writer.add_frame(frame)
            frames.append(frame)
        writer.end_episode("push the cube")
        episodes.append(frames)
    return episodes


def test_round_trip_is_identical(tmp_path: Path) -> None:
    written = make_dataset(tmp_path / "ds")
    frames = [f for episode in written for f in episode]
    ds = Dataset(tmp_path / "ds", require=("observation.policy", "action"), robot="panda")
    assert len(ds) == 12 and ds.task == "panda_push" and ds.problems == []
    for name in ("observation.policy", "observation.privileged", "action", "policy_action"):
        np.testing.assert_array_equal(ds.column(name), np.stack([f[name] for f in frames]))
    for name in ("intervention", "next.terminated", "next.done", "next.success"):
        np.testing.assert_array_equal(ds.column(name), [f[name] for f in frames])
    np.testing.assert_array_equal(ds.column("next.reward"), np.float32([f["next.reward"] for f in frames]))
    images = ds.images("front")
    assert images.dtype == torch.uint8
    np.testing.assert_array_equal(images.numpy(), np.stack([f["observation.images.front"] for f in frames]))
    batches = list(ds.image_batches("front", batch_size=5))
    assert [len(i) for i, _ in batches] == [5, 5, 2]
    np.testing.assert_array_equal(np.concatenate([b.numpy() for _, b in batches]), images.numpy())


def test_transitions_pair_each_frame_with_the_next_in_its_episode(tmp_path: Path) -> None:
    written = make_dataset(tmp_path / "ds")
    t = Dataset(tmp_path / "ds").transitions()
    obs = np.stack([f["observation.policy"] for e in written for f in e])
    # Episodes of 4, 3, 5 frames: the next observation of frame 3 (end of episode 0) is itself.
    np.testing.assert_array_equal(t.next_obs[0].numpy(), obs[1])
    np.testing.assert_array_equal(t.next_obs[3].numpy(), obs[3])
    np.testing.assert_array_equal(t.next_obs[4].numpy(), obs[5])
    np.testing.assert_array_equal(t.next_obs[11].numpy(), obs[11])
    assert t.done.tolist() == [False] * 11 + [True]  # only the last episode ends terminally
    assert t.episode.tolist() == [0] * 4 + [1] * 3 + [2] * 5
    assert t.obs.shape == (12, P) and t.action.shape == (12, A) and t.reward.shape == (12,)
    assert t.intervention.tolist() == [f["intervention"] for e in written for f in e]


def test_missing_column_is_named(tmp_path: Path) -> None:
    make_dataset(tmp_path / "ds")
    with pytest.raises(DatasetError, match="missing column 'observation.state'"):
        Dataset(tmp_path / "ds", require=("observation.state",))
    with pytest.raises(DatasetError, match="missing column 'next.reward.vlm'"):
        Dataset(tmp_path / "ds").transitions(reward="next.reward.vlm")


def test_mismatched_shape_is_named(tmp_path: Path) -> None:
    make_dataset(tmp_path / "ds")
    info_path = tmp_path / "ds" / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["features"]["action"]["shape"] = [4]
    info_path.write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="column 'action' has 3 values per frame .* shape \\[4\\]"):
        Dataset(tmp_path / "ds")


def test_different_robot_is_named(tmp_path: Path) -> None:
    make_dataset(tmp_path / "a")
    make_dataset(tmp_path / "b", robot="quadruped")
    with pytest.raises(DatasetError, match="robot_type is 'quadruped', expected 'panda'"):
        Dataset(tmp_path / "b", robot="panda")
    with pytest.raises(DatasetError, match="robot_type 'quadruped'"):
        merge([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")


def test_truncated_file_names_its_episode_and_the_rest_loads(tmp_path: Path) -> None:
    make_dataset(tmp_path / "ds")
    path = tmp_path / "ds" / "data" / "chunk-000" / "file-001.parquet"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.warns(UserWarning, match="episode 1 .*file-001.parquet"):
        ds = Dataset(tmp_path / "ds")
    assert len(ds.problems) == 1 and "episode 1" in ds.problems[0]
    assert len(ds) == 4 + 5 and sorted(set(ds.episode_index().tolist())) == [0, 2]
    assert len(ds.transitions()) == 9


def test_merge_and_filter(tmp_path: Path) -> None:
    a = make_dataset(tmp_path / "a", lengths=(2, 3), seed=1)
    b = make_dataset(tmp_path / "b", lengths=(4,), seed=2)
    merged = Dataset(merge([tmp_path / "a", tmp_path / "b"], tmp_path / "ab"))
    assert len(merged) == 9 and merged.episode_index().tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    expected = np.stack([f["observation.policy"] for e in a + b for f in e])
    np.testing.assert_array_equal(merged.column("observation.policy"), expected)
    np.testing.assert_array_equal(merged.images("front").numpy(),
                                  np.stack([f["observation.images.front"] for e in a + b for f in e]))
    assert merged.info["robot_rl"]["qualities"] == ["q0", "q1", "q0"]
    kept = Dataset(filter_episodes(merged, tmp_path / "kept", keep=[2, 0]))
    assert kept.episode_index().tolist() == [0, 0, 1, 1, 1, 1]
    assert kept.info["robot_rl"]["qualities"] == ["q0", "q0"]
    np.testing.assert_array_equal(kept.column("action"), np.stack([f["action"] for e in (a[0], b[0]) for f in e]))
    with pytest.raises(DatasetError, match="episodes \\[7\\]"):
        filter_episodes(merged, tmp_path / "bad", keep=[7])


def test_merge_rejects_other_columns(tmp_path: Path) -> None:
    make_dataset(tmp_path / "a")
    make_dataset(tmp_path / "b")
    Dataset(tmp_path / "b").add_column("next.reward.vlm", np.zeros(12))
    with pytest.raises(DatasetError, match="column 'next.reward.vlm'"):
        merge([tmp_path / "a", tmp_path / "b"], tmp_path / "ab")


def test_add_column_persists(tmp_path: Path) -> None:
    make_dataset(tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    values = np.arange(12, dtype=np.float32) / 7
    ds.add_column("next.reward.learned", values)
    again = Dataset(tmp_path / "ds")
    np.testing.assert_array_equal(again.column("next.reward.learned"), values)
    np.testing.assert_array_equal(again.transitions(reward="next.reward.learned").reward.numpy(), values)
    with pytest.raises(DatasetError, match="already has column 'next.reward.learned'"):
        again.add_column("next.reward.learned", values)
    with pytest.raises(DatasetError, match="11 values for 12 frames"):
        again.add_column("next.reward.other", values[:11])
