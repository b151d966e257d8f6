"""Pairwise progress critic: the VLAC value rule, antisymmetry, scoring and save/load."""

from __future__ import annotations

import pytest
import torch

from robot_rl.rewards.base import REWARDS, PairwiseRewardModule
from robot_rl.rewards.progress_critic import ProgressCritic, relative_critic, vlac_values


def test_vlac_value_rule_hand_computed() -> None:
    # V0 = 0
    # c = +0.5: V = 0    + (1 - 0)    * 0.5  = 0.5
    # c = -0.5: V = 0.5  + 0.5        * -0.5 = 0.25
    # c = +0.5: V = 0.25 + (1 - 0.25) * 0.5  = 0.625
    # c = +1.0: V = 0.625 + 0.375     * 1    = 1.0
    # c = -1.0: V = 1.0  + 1.0        * -1   = 0.0
    values = vlac_values(torch.tensor([0.5, -0.5, 0.5, 1.0, -1.0]))
    assert values.tolist() == pytest.approx([0.0, 0.5, 0.25, 0.625, 1.0, 0.0])
    # Losses from zero progress are no-ops; batches run along the last axis.
    batch = vlac_values(torch.tensor([[-0.3, 0.2], [0.2, -0.3]]))
    torch.testing.assert_close(batch, torch.tensor([[0.0, 0.0, 0.2], [0.0, 0.2, 0.14]]))


def test_relative_critics_accumulate_back_to_the_progress_sequence() -> None:
    progress = torch.tensor([0.0, 0.4, 0.1, 0.7, 1.0, 0.5])
    c = relative_critic(progress[:-1], progress[1:])
    # 0 -> 0.4 gains 0.4 of the remaining 1; 0.4 -> 0.1 loses 0.75 of the 0.4 made; ...
    assert c.tolist() == pytest.approx([0.4, -0.75, 2 / 3, 1.0, -0.5])
    torch.testing.assert_close(vlac_values(c), progress)


def _frames(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 24, 24, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_pair_critic_is_antisymmetric_by_construction() -> None:
    critic = ProgressCritic(seed=3)
    a, b = _frames(6, 0), _frames(6, 1)
    torch.testing.assert_close(critic.delta(a, b), -critic.delta(b, a))
    torch.testing.assert_close(critic.delta(a, a), torch.zeros(6))
    assert float(critic.delta(a, b).abs().max()) < 1.0
    p = critic.score_pairs(a, b, "")
    torch.testing.assert_close(p + critic.score_pairs(b, a, ""), torch.ones(6))


def test_training_orders_a_synthetic_progress_sequence(tmp_path) -> None:
    # A bright bar growing from left to right; progress is the bar's length.
    frames = torch.zeros(16, 1, 24, 24, 3, dtype=torch.uint8)
    for t in range(16):
        frames[t, 0, 8:16, : 1 + t] = 255
    critic = REWARDS.get("progress_critic")(steps=150, shift=0, done_threshold=0.8)
    assert isinstance(critic, PairwiseRewardModule)
    critic.fit([frames])  # time-index labels
    values = critic.episode_values(frames)
    assert values[0] == 0.0 and (values.diff() > -0.05).all() and values[-1] > 0.8
    out = critic.score(frames, None, "")
    assert bool(out.done[-1]) and not bool(out.done[0])
    torch.testing.assert_close(out.reward, out.progress)
    assert critic.episode_values(frames, stride=4).shape == (4,)
    critic.save(tmp_path / "critic.pt")
    torch.testing.assert_close(ProgressCritic.load(tmp_path / "critic.pt").score(frames, None, "").reward, out.reward)
    with pytest.raises(ValueError, match="16 frames has 3 progress values"):
        critic.fit([frames], [[0.0, 0.5, 1.0]])
