"""End to end: a preference reward learned from oracle labels on rendered panda_reach frames
tracks the true progress of held-out episodes of mixed quality.

Episodes come from ``robot_rl_sim.episodes`` (scripted tip paths, IK, ``set_state`` and
rendering of ``make("panda_reach", image_cameras=("front",), image_size=(64, 64))``; no
physics, no policy): expert, noisy, regressing and random episodes, each with a new target.
Pairs are drawn within episodes: the task's progress is 1 - d/d0 with the episode's own
initial distance d0, so only within an episode does it order frames by what the image shows
(the tip-to-ball distance).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl.rewards.labellers import OracleLabeller, ProgressTable
from robot_rl.rewards.metrics import episode_spearman, pairwise_accuracy, time_index
from robot_rl.rewards.preference import PreferenceReward, sample_pairs

episodes = pytest.importorskip("robot_rl_sim.episodes")

GOAL = "the robot gripper touches the green ball"
HELD_OUT = ["expert", "noisy", "regressing"] * 6


def _frames(episode) -> torch.Tensor:
    return torch.from_numpy(episode.images["front"])[:, None]  # uint8[T, 1, 64, 64, 3]


def test_preferences_from_a_noisy_oracle_learn_held_out_progress() -> None:
    train = episodes.make_episodes("panda_reach", ["expert", "noisy", "regressing", "random"] * 16, num_steps=12,
                                   seed=0, num_envs=16)
    held = episodes.make_episodes("panda_reach", HELD_OUT, num_steps=20, seed=1000, num_envs=16)
    frames = torch.cat([_frames(e) for e in train])  # 768 frames
    progress = torch.cat([torch.from_numpy(e.progress) for e in train])
    episode_of = torch.arange(len(train)).repeat_interleave(12)

    oracle = OracleLabeller(ProgressTable(frames, progress), flip_prob=0.1, seed=0)
    pairs = sample_pairs(len(frames), 600, torch.Generator().manual_seed(0), groups=episode_of)
    a, b = frames[pairs[:, 0]], frames[pairs[:, 1]]
    labels = oracle.label(a, b, GOAL)
    counts = oracle.counts.as_dict()
    assert counts["queried"] == 600 and counts["tie"] > 0  # frames of equal progress are ties

    model = PreferenceReward(max_epochs=12, seed=0)
    stats = model.fit(a, b, labels)
    preds = [model.score(_frames(e), None, GOAL).reward for e in held]
    truth = [e.progress for e in held]
    rho = episode_spearman(preds, truth)
    rho_time = episode_spearman(time_index([len(t) for t in truth]), truth)
    acc = pairwise_accuracy(preds, truth)
    acc_time = pairwise_accuracy(time_index([len(t) for t in truth]), truth)
    by_quality = {q: round(float(np.nanmean(rho[[e.quality == q for e in held]])), 3) for q in set(HELD_OUT)}
    print("fit:", stats, "oracle:", counts)
    print("held-out Spearman:", float(np.nanmean(rho)), by_quality, "time index:", float(np.nanmean(rho_time)))
    print("pairwise accuracy:", acc, "time index:", acc_time)
    # Measured here (seeds as above): Spearman 0.86 (expert 0.93, noisy 0.70, regressing 0.96),
    # time index 0.62; pairwise accuracy 0.93 against 0.79. Other seeds gave 0.86-0.94.
    assert np.nanmean(rho) > 0.78
    assert np.nanmean(rho) > np.nanmean(rho_time) + 0.15
    assert acc > 0.87 and acc > acc_time + 0.08
    # The learned probabilities agree with the (noisy) training labels well above chance.
    p = model.score_pairs(a, b, GOAL)
    hard = (labels == 0.0) | (labels == 1.0)
    assert float(((p > 0.5).float() == labels)[hard].float().mean()) > 0.8
