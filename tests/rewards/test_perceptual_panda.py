"""End to end: perceptual rewards fitted on 5 rendered panda_reach demos, judged on held-out
episodes of mixed quality against the task's ground-truth progress and the time-index baseline."""

from __future__ import annotations

import numpy as np
import torch

from robot_rl.rewards.metrics import episode_spearman, pairwise_accuracy, time_index
from robot_rl.rewards.perceptual import PerceptualReward


def _images(episode) -> torch.Tensor:
    return torch.from_numpy(episode.images["front"])[:, None]  # uint8[T, 1, H, W, 3]


def test_perceptual_progress_tracks_true_progress_on_held_out_episodes(reach_demos, reach_held_out) -> None:
    demos, held = reach_demos, reach_held_out
    module = PerceptualReward().fit([_images(d) for d in demos])
    outs = [module.score(_images(e), None, "the gripper touches the green ball") for e in held]
    truth = [e.progress for e in held]
    rho = episode_spearman([o.progress for o in outs], truth)
    rho_reward = episode_spearman([o.reward for o in outs], truth)
    rho_time = episode_spearman(time_index([len(t) for t in truth]), truth)
    by_quality = {q: float(np.nanmean(rho[[e.quality == q for e in held]])) for q in ("expert", "noisy", "regressing")}
    mixed = [e.quality != "random" for e in held]  # random episodes mostly sit at progress 0
    print("perceptual spearman by quality:", by_quality, "reward:", np.nanmean(rho_reward[mixed]),
          "time index:", np.nanmean(rho_time[mixed]))
    # Measured (seeds as above): progress Spearman 0.94 expert / 0.86 noisy / 0.88 regressing, mean 0.90;
    # the paper's weighted-sum reward 0.42; the time index 0.65 (it cannot see regressions).
    assert by_quality["expert"] > 0.85
    assert by_quality["regressing"] > 0.75
    assert np.nanmean(rho[mixed]) > 0.8
    assert np.nanmean(rho[mixed]) > np.nanmean(rho_time[mixed]) + 0.15
    acc = pairwise_accuracy([o.progress for o in outs], truth)
    acc_time = pairwise_accuracy(time_index([len(t) for t in truth]), truth)
    print("pairwise accuracy:", acc, "time index:", acc_time)
    # Measured: 0.85 against 0.73 (all frame pairs, random episodes included).
    assert acc > acc_time + 0.05
