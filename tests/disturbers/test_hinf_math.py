"""H∞ disturber maths against hand-computed values: cost, discounted sums, λ, advantages."""

from __future__ import annotations

import pytest
import torch

from robot_rl.configs.train import HInfConfig, PPOConfig
from robot_rl.disturbers.common import clip_norm
from robot_rl.disturbers.hinf import (
    HInfDisturber,
    constraint_violation,
    discounted_sums,
    oracle_cost,
    update_multiplier,
)


def test_multiplier_rises_when_violated_falls_when_satisfied_and_stays_non_negative() -> None:
    assert update_multiplier(1.0, 2.0, 0.1) == pytest.approx(1.2)     # violated: λ grows
    assert update_multiplier(1.0, -2.0, 0.1) == pytest.approx(0.8)    # satisfied: λ shrinks
    assert update_multiplier(0.1, -5.0, 0.1) == 0.0                   # 0.1 − 0.5 projected onto λ ≥ 0
    assert update_multiplier(0.0, -1.0, 1.0) == 0.0


def test_oracle_cost_sums_the_gaps_to_the_oracle() -> None:
    terms = {"track_lin_vel": torch.tensor([1.0, 0.25, 1.2]), "track_ang_vel": torch.tensor([0.5, 0.1, 0.0]),
             "alive": torch.tensor([0.2, 0.2, 0.2])}
    oracle = {"track_lin_vel": 1.0, "track_ang_vel": 0.5}
    terminated = torch.tensor([False, False, True])
    # world 0: at the oracle -> 0; world 1: 0.75 + 0.4; world 2: max(0, 1 - 1.2) + 0.5 + 5 (fall)
    cost = oracle_cost(terms, oracle, terminated, termination_cost=5.0)
    torch.testing.assert_close(cost, torch.tensor([0.0, 1.15, 5.5]))


def test_oracle_cost_names_unknown_terms() -> None:
    with pytest.raises(ValueError, match=r"\['speed'\].*track_lin_vel"):
        oracle_cost({"track_lin_vel": torch.zeros(2)}, {"speed": 1.0}, torch.zeros(2, dtype=torch.bool))


def test_discounted_sums_restart_at_episode_ends() -> None:
    x = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])  # T=3, N=2
    dones = torch.zeros(3, 2, dtype=torch.bool)
    # world 0: 1 + 0.5·2 + 0.25·3 = 2.75; world 1: 1 + 0.5 + 0.25 = 1.75 -> mean 2.25
    assert discounted_sums(x, dones, 0.5) == pytest.approx(2.25)
    dones[0, 0] = True
    # world 0 is two segments: [1] and [2, 3] -> 1 and 2 + 1.5; with world 1: (1 + 3.5 + 1.75) / 3
    assert discounted_sums(x, dones, 0.5) == pytest.approx(6.25 / 3)
    dones[2, 1] = True  # an episode ending on the last step starts no segment inside the rollout
    assert discounted_sums(x, dones, 0.5) == pytest.approx(6.25 / 3)


def test_constraint_violation_is_cost_minus_eta_times_intensity() -> None:
    costs = torch.tensor([[1.0], [1.0]])
    intensity = torch.tensor([[0.5], [1.0]])
    dones = torch.zeros(2, 1, dtype=torch.bool)
    # Ĵ(c) = 1 + 0.9 = 1.9; Ĵ(‖d‖) = 0.5 + 0.9 = 1.4; η = 2 -> 1.9 − 2.8
    assert constraint_violation(costs, intensity, dones, 0.9, 2.0) == pytest.approx(-0.9)


def test_force_norm_is_bounded() -> None:
    force = torch.tensor([[30.0, 40.0, 0.0], [3.0, 4.0, 0.0]])
    torch.testing.assert_close(clip_norm(force, 10.0), torch.tensor([[6.0, 8.0, 0.0], [3.0, 4.0, 0.0]]))


def small_disturber(**cfg) -> HInfDisturber:
    algo = PPOConfig(num_steps=2, num_epochs=1, num_minibatches=1, gamma=0.5, lam=1.0)
    hinf = HInfConfig(enabled=True, max_force=10.0, hidden=(8,), oracle={"r": 1.0}, **cfg)
    return HInfDisturber(hinf, algo, 3, 1, torch.device("cpu"), hinf.oracle, torch.Generator().manual_seed(0))


def test_actor_advantages_are_the_lagrangian_mix() -> None:
    d = small_disturber(lambda_init=3.0)
    d.set_iteration(0)
    obs = torch.zeros(1, 3)
    for reward in (0.25, 1.0):  # costs 0.75 then 0
        d.act(obs)
        d.record({"r": torch.tensor([reward])}, torch.tensor([False]), torch.tensor([False]), obs)
    d._cost_values.zero_()  # a cost critic predicting 0 makes A_c the discounted cost-to-go
    d.cost_critic.net[-1].weight.data.zero_()
    d.cost_critic.net[-1].bias.data.zero_()
    shape = d.shaper(obs)
    # A_c = [0.75 + 0.5·0, 0]; (A_r − 3·A_c) / 4 with A_r = [1, 1]
    torch.testing.assert_close(shape(torch.ones(2, 1)), torch.tensor([[(1 - 2.25) / 4], [0.25]]))


def test_disturber_is_silent_before_its_start_and_ramps_its_bound() -> None:
    d = small_disturber(start_iteration=2, ramp_iterations=4)
    d.set_iteration(1)
    assert not d.active and torch.equal(d.act(torch.ones(1, 3)), torch.zeros(1, 3))
    d.set_iteration(2)
    assert d.bound == pytest.approx(2.5)
    force = d.act(torch.ones(1, 3))
    assert float(torch.linalg.norm(force)) <= 2.5 + 1e-6
    d.set_iteration(10)
    assert d.bound == 10.0


def test_logged_cost_and_violation_use_raw_costs_not_bootstrapped_ones() -> None:
    d = small_disturber(eta=0.0)
    d.set_iteration(0)
    obs = torch.ones(1, 3)
    with torch.no_grad():
        d.cost_critic.net[-1].bias.fill_(100.0)  # a large cost-to-go, bootstrapped at the time-out
    for truncated in (False, True):
        d.act(obs)
        d.record({"r": torch.tensor([0.5])}, torch.tensor([False]), torch.tensor([truncated]), obs)
    d.shaper(obs)
    row = d.update(obs)
    assert row["hinf/cost"] == pytest.approx(0.5)
    assert row["hinf/violation"] == pytest.approx(0.5 + 0.5 * 0.5)  # Ĵ(c) over one segment, γ = 0.5
