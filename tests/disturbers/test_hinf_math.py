"""H∞ disturber maths against hand-computed values: cost, discounted sums, λ, advantages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from robot_rl.configs.train import HInfConfig, PPOConfig
from robot_rl.disturbers.common import clip_norm
from robot_rl.disturbers.hinf import (
    HInfDisturber,
    constraint_violation,
    discounted_sums,
    oracle_cost,
    reference_oracle,
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


def test_multiplier_is_capped_at_max_lambda() -> None:
    assert update_multiplier(0.9, 2.0, 0.1, max_value=1.0) == 1.0        # 0.9 + 0.2 capped
    assert update_multiplier(0.5, 2.0, 0.1, max_value=1.0) == pytest.approx(0.7)  # below the cap: unchanged rule
    assert update_multiplier(1.0, -3.0, 0.1, max_value=1.0) == pytest.approx(0.7)  # leaves the cap when satisfied
    assert update_multiplier(0.1, -5.0, 0.1, max_value=1.0) == 0.0       # still projected onto λ ≥ 0


def test_relative_cost_is_the_signed_gap_to_the_measured_oracle() -> None:
    terms = {"track_lin_vel": torch.tensor([0.8, 0.5, 0.9]), "track_ang_vel": torch.tensor([0.3, 0.4, 0.1])}
    oracle = {"track_lin_vel": 0.7, "track_ang_vel": 0.3}
    terminated = torch.tensor([False, True, False])
    # world 0: (0.7 − 0.8) + (0.3 − 0.3) − 5·0.1 = −0.6 (better than undisturbed: negative, not clamped)
    # world 1: 0.2 + (−0.1) + 5·(1 − 0.1) = 4.6; world 2: −0.2 + 0.2 − 0.5 = −0.5
    cost = oracle_cost(terms, oracle, terminated, 5.0, clamp=False, termination_rate=0.1)
    torch.testing.assert_close(cost, torch.tensor([-0.6, 4.6, -0.5]))


def test_reference_oracle_averages_the_first_worlds_only() -> None:
    terms = {"r": torch.tensor([[1.0, 3.0, 100.0], [2.0, 6.0, 100.0]])}  # T=2, N=3; world 2 is pushed
    terminated = torch.tensor([[False, True, True], [False, False, True]])
    oracle, rate = reference_oracle(terms, terminated, 2)
    assert oracle == {"r": pytest.approx(3.0)} and rate == pytest.approx(0.25)  # (1+3+2+6)/4; 1 of 4 steps
    with pytest.raises(ValueError, match="at least one undisturbed world"):
        reference_oracle(terms, terminated, 0)


def relative_disturber(num_envs: int, num_steps: int, **cfg) -> HInfDisturber:
    algo = PPOConfig(num_steps=num_steps, num_epochs=1, num_minibatches=1, gamma=0.9, lam=0.95)
    cfg = {"reference_fraction": 0.25, "termination_cost": 5.0, **cfg}
    hinf = HInfConfig(enabled=True, max_force=10.0, hidden=(8,), oracle_mode="relative", cost_terms=("r",), **cfg)
    return HInfDisturber(hinf, algo, 3, num_envs, torch.device("cpu"), {}, torch.Generator().manual_seed(0))


def run_rollout(d: HInfDisturber, reward: Callable[[int, torch.Tensor], torch.Tensor],
                fall_prob: float, seed: int = 0) -> dict[str, float]:
    """One rollout of d's length where reward(t, force float[N, 3]) gives the term and worlds
    fall with probability fall_prob per step; returns the disturber's metrics."""
    g = torch.Generator().manual_seed(seed)
    n = d._obs.shape[1]
    obs = torch.zeros(n, 3)
    for t in range(d._obs.shape[0]):
        force = d.act(obs)
        terminated = torch.rand(n, generator=g) < fall_prob
        d.record({"r": reward(t, force)}, terminated, torch.zeros(n, dtype=torch.bool), obs)
    d.shaper(obs)
    return d.update(obs)


def test_undisturbed_policy_has_about_zero_violation_with_a_relative_oracle() -> None:
    # Every world draws its term from the same distribution (mean 0.6, far below the best
    # value 1.0) and falls equally often: without disturbance, nothing is the disturber's doing.
    noise = torch.Generator().manual_seed(1)

    def reward(t: int, force: torch.Tensor) -> torch.Tensor:
        return 0.6 + 0.2 * torch.randn(force.shape[0], generator=noise)

    d = relative_disturber(num_envs=4000, num_steps=10, start_iteration=100, lambda_init=0.5)
    d.set_iteration(0)  # silent: no force anywhere
    row = run_rollout(d, reward, fall_prob=0.02)
    assert abs(row["hinf/violation"]) < 0.05
    assert row["hinf/oracle/r"] == pytest.approx(0.6, abs=0.01)
    assert row["hinf/oracle/termination_rate"] == pytest.approx(0.02, abs=0.005)
    # A fixed best value of 1.0 would call the same policy a violator: Ĵ(0.4 per step) over 10 steps.
    absolute = small_disturber()
    absolute_cost = oracle_cost({"r": torch.full((1,), 0.6)}, {"r": 1.0}, torch.zeros(1, dtype=torch.bool))
    assert float(absolute_cost) == pytest.approx(0.4) and absolute.relative is False


def test_relative_violation_counts_what_the_push_costs() -> None:
    # The pushed worlds lose 0.1 per step whatever the push; the reference worlds are untouched.
    def reward(t: int, force: torch.Tensor) -> torch.Tensor:
        return torch.where(torch.linalg.norm(force, dim=1) > 0, 0.5, 0.6)

    d = relative_disturber(num_envs=8, num_steps=3, eta=0.0)
    d.set_iteration(0)
    row = run_rollout(d, reward, fall_prob=0.0)
    assert d.reference == 2                                           # 25% of 8 worlds are never pushed
    # oracle 0.6 from worlds 0-1; pushed worlds: cost 0.1 per step, Ĵ = 0.1·(1 + 0.9 + 0.81)
    assert row["hinf/oracle/r"] == pytest.approx(0.6)
    assert row["hinf/violation"] == pytest.approx(0.271)
    assert row["hinf/cost"] == pytest.approx(0.1)
    assert row["hinf/lambda"] == pytest.approx(0.05 * 0.271)         # λ rose from 0 at lambda_lr 0.05


def test_reference_worlds_are_never_pushed_and_bad_fractions_are_refused() -> None:
    d = relative_disturber(num_envs=8, num_steps=1)
    d.set_iteration(0)
    force = d.act(torch.randn(8, 3))
    assert torch.equal(force[:2], torch.zeros(2, 3)) and bool((torch.linalg.norm(force[2:], dim=1) > 0).all())
    with pytest.raises(ValueError, match="reference_fraction"):
        relative_disturber(num_envs=2, num_steps=1, reference_fraction=0.1)   # rounds to 0 undisturbed worlds
    with pytest.raises(ValueError, match="cost_terms"):
        HInfDisturber(HInfConfig(enabled=True, oracle_mode="relative"), PPOConfig(), 3, 8, torch.device("cpu"), {},
                      torch.Generator())


def test_measured_oracle_survives_a_checkpoint() -> None:
    d = relative_disturber(num_envs=8, num_steps=2, start_iteration=5)
    d.set_iteration(0)
    run_rollout(d, lambda t, force: torch.full((force.shape[0],), 0.3), fall_prob=0.0)
    other = relative_disturber(num_envs=8, num_steps=2, start_iteration=5)
    other.load_state_dict(d.state_dict())
    assert other.oracle == {"r": pytest.approx(0.3)} and other._oracle_measured
