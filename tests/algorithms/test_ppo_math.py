"""GAE and PPO loss pieces against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from robot_rl.algorithms.gae import bootstrap_time_outs, gae
from robot_rl.algorithms.networks import RunningNorm
from robot_rl.algorithms.ppo import adapt_lr, gaussian_kl, surrogate_loss, value_loss
from robot_rl.configs import PPOConfig


def test_gae_worked_example() -> None:
    # gamma 0.9, lambda 0.5; one world; the episode ends after step 1.
    #   rewards [1, 2, 3], values [0.5, 1.0, 1.5], V(s_3) = 2.0
    #   t=2: delta = 3 + 0.9*2.0 - 1.5 = 3.3               A_2 = 3.3
    #   t=1: delta = 2 + 0 (done) - 1.0 = 1.0                A_1 = 1.0 (nothing flows across the end)
    #   t=0: delta = 1 + 0.9*1.0 - 0.5 = 1.4                 A_0 = 1.4 + 0.9*0.5*1.0 = 1.85
    #   returns = A + V = [2.35, 2.0, 4.8]
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[False], [True], [False]])
    advantages, returns = gae(rewards, values, dones, torch.tensor([2.0]), gamma=0.9, lam=0.5)
    torch.testing.assert_close(advantages.squeeze(1), torch.tensor([1.85, 1.0, 3.3]))
    torch.testing.assert_close(returns.squeeze(1), torch.tensor([2.35, 2.0, 4.8]))


def test_gae_with_lambda_one_is_discounted_return_minus_value() -> None:
    rewards = torch.tensor([[1.0], [1.0]])
    values = torch.zeros(2, 1)
    adv, _ = gae(rewards, values, torch.zeros(2, 1, dtype=torch.bool), torch.tensor([10.0]), gamma=0.5, lam=1.0)
    # A_0 = 1 + 0.5*1 + 0.25*10 = 4.0, A_1 = 1 + 0.5*10 = 6.0
    torch.testing.assert_close(adv.squeeze(1), torch.tensor([4.0, 6.0]))


def test_time_out_bootstrap_adds_discounted_final_value_only_when_truncated() -> None:
    out = bootstrap_time_outs(torch.tensor([1.0, 1.0]), torch.tensor([True, False]), torch.tensor([2.0, 2.0]), 0.9)
    torch.testing.assert_close(out, torch.tensor([2.8, 1.0]))  # 1 + 0.9*2


def test_surrogate_loss_clips_both_ways() -> None:
    # ratios 1.5 (A=+1) and 0.5 (A=-1), clip 0.2:
    #   sample 1: max(-1.5, -1.2) = -1.2 ; sample 2: max(0.5, 0.8) = 0.8 ; mean = -0.2
    old = torch.zeros(2)
    new = torch.log(torch.tensor([1.5, 0.5]))
    loss = surrogate_loss(new, old, torch.tensor([1.0, -1.0]), clip=0.2)
    assert loss.item() == pytest.approx(-0.2, abs=1e-6)


def test_value_loss_clipped_and_unclipped() -> None:
    values, old, returns = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.9]), torch.tensor([2.0, 3.0])
    # clipped: s1 value limited to 0.2 -> max((1-2)^2, (0.2-2)^2) = 3.24; s2 -> 0; mean 1.62
    assert value_loss(values, old, returns, clip=0.2).item() == pytest.approx(1.62, abs=1e-6)
    assert value_loss(values, old, returns, clip=None).item() == pytest.approx(0.5, abs=1e-6)


def test_gaussian_kl() -> None:
    # KL(N(0,1) || N(1,1)) = 0.5 per dimension; two dimensions -> 1.0
    kl = gaussian_kl(torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2), torch.ones(1, 2))
    assert kl.item() == pytest.approx(1.0)
    # KL(N(0,1) || N(0,2)) = log 2 + 1/8 - 1/2
    kl = gaussian_kl(torch.zeros(1, 1), torch.ones(1, 1), torch.zeros(1, 1), torch.full((1, 1), 2.0))
    assert kl.item() == pytest.approx(math.log(2) + 0.125 - 0.5)


def test_adaptive_lr_rule_and_bounds() -> None:
    cfg = PPOConfig(desired_kl=0.01, lr_min=1e-4, lr_max=2e-3)
    assert adapt_lr(1e-3, 0.05, cfg) == pytest.approx(1e-3 / 1.5)
    assert adapt_lr(1e-3, 0.001, cfg) == pytest.approx(1.5e-3)
    assert adapt_lr(1e-3, 0.01, cfg) == pytest.approx(1e-3)
    assert adapt_lr(1.9e-3, 0.0, cfg) == pytest.approx(2e-3)
    assert adapt_lr(1.2e-4, 1.0, cfg) == pytest.approx(1e-4)


def test_running_norm_matches_statistics_of_all_batches() -> None:
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(n, 3, generator=gen) * torch.tensor([1.0, 5.0, 0.1]) + 2.0 for n in (7, 50, 13)]
    norm = RunningNorm(3)
    for batch in batches:
        norm.update(batch)
    data = torch.cat(batches)
    torch.testing.assert_close(norm.mean, data.mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(norm.var, data.var(0, unbiased=False), atol=1e-4, rtol=1e-4)
    out = norm(data)
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
