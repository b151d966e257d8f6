"""Offline and off-policy algorithms: losses against hand-computed values, RLPD sampling and
interventions, and a short learning test per algorithm on a one-step task."""

from __future__ import annotations

import math

import pytest
import torch

from robot_rl.algorithms.bc import BC
from robot_rl.algorithms.iql import IQL, awr_weights, expectile_loss
from robot_rl.algorithms.replay import (
    Batch,
    Critic,
    FixedNorm,
    NStepReturns,
    ReplayBuffer,
    SymmetricSampler,
    add_intervention,
)
from robot_rl.algorithms.sac import SAC, subset_members
from robot_rl.algorithms.td3bc import TD3BC, td3bc_actor_loss
from robot_rl.configs.offline import IQLConfig, NetConfig, SACConfig, TD3BCConfig


def test_expectile_loss_by_hand() -> None:
    # u = Q - V = [2, -1], tau = 0.7: weights 0.7 (u >= 0) and 0.3 (u < 0).
    # (0.7 * 2^2 + 0.3 * (-1)^2) / 2 = (2.8 + 0.3) / 2 = 1.55
    assert expectile_loss(torch.tensor([2.0, -1.0]), 0.7).item() == pytest.approx(1.55)
    # tau = 0.5 is half the mean squared error: (4 + 1) / 2 / 2 = 1.25
    assert expectile_loss(torch.tensor([2.0, -1.0]), 0.5).item() == pytest.approx(1.25)


def test_awr_weights_by_hand() -> None:
    # exp(3 * [0, 1, 2, -1]) = [1, 20.0855, 403.43 -> clipped to 100, 0.049787]
    w = awr_weights(torch.tensor([0.0, 1.0, 2.0, -1.0]), temperature=3.0, max_weight=100.0)
    assert w.tolist() == pytest.approx([1.0, math.exp(3), 100.0, math.exp(-3)], rel=1e-5)


def test_td3bc_actor_loss_by_hand() -> None:
    # q = [1, -3]: lambda = 2.5 / mean|q| = 2.5 / 2 = 1.25; -lambda * mean(q) = -1.25 * -1 = 1.25
    # BC term: mean((pi - a)^2) over [[0.5, 0], [0, 0]] = 0.25 / 4 = 0.0625; total 1.3125
    q = torch.tensor([1.0, -3.0])
    pi = torch.tensor([[0.5, 0.0], [0.0, 0.0]])
    loss = td3bc_actor_loss(q, pi, torch.zeros(2, 2), alpha=2.5)
    assert loss.item() == pytest.approx(1.3125)


def test_subset_members_are_distinct_and_cover_the_ensemble() -> None:
    assert sorted(subset_members(3, 3)) == [0, 1, 2]
    gen = torch.Generator().manual_seed(0)
    drawn = [tuple(subset_members(5, 2, gen)) for _ in range(200)]
    assert all(len(set(d)) == 2 and all(0 <= i < 5 for i in d) for d in drawn)
    assert len({frozenset(d) for d in drawn}) == 10  # every pair of 5 members turns up


def test_critic_runs_only_the_chosen_members() -> None:
    torch.manual_seed(0)
    critic = Critic(FixedNorm.identity(3), 3, 2, (8,), ensemble=4, layer_norm=True)
    obs, action = torch.randn(5, 3), torch.randn(5, 2)
    torch.testing.assert_close(critic(obs, action, [3, 1]), critic(obs, action)[[3, 1]])
    calls = []
    for i, net in enumerate(critic.nets):
        net.register_forward_hook(lambda *_, i=i: calls.append(i))
    critic(obs, action, [2, 0])
    assert calls == [2, 0]


@pytest.mark.parametrize("backup_entropy", [True, False])
def test_sac_target_by_hand(backup_entropy: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    cfg = SACConfig(ensemble=4, subset=2, gamma=0.9, init_temperature=0.5, backup_entropy=backup_entropy)
    sac = SAC(3, 2, NetConfig(hidden=(8,)), cfg, generator=gen)
    batch = Batch(torch.randn(5, 3), torch.rand(5, 2), torch.randn(5), torch.randn(5, 3),
                  torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0]))
    state = gen.get_state()
    target = sac.td_target(batch)
    gen.set_state(state)  # the same next actions and critic subset, drawn again by hand
    next_action, log_prob = sac.actor.sample(batch.next_obs, gen)
    members = subset_members(4, 2, gen)
    q = torch.stack([sac.critic_target.nets[i](torch.cat([batch.next_obs, next_action], 1)).squeeze(1)
                     for i in members]).min(0).values
    v = q - 0.5 * log_prob if backup_entropy else q
    torch.testing.assert_close(target, batch.reward + 0.9 * (1.0 - batch.done) * v)
    assert not torch.allclose(log_prob, torch.zeros_like(log_prob))  # the two cases differ
    # n-step transitions bootstrap with γ to the power of the steps each spans.
    batch.steps = torch.tensor([1.0, 2.0, 3.0, 3.0, 1.0])
    gen.set_state(state)
    discount = torch.tensor([0.9, 0.81, 0.729, 0.729, 0.9])
    torch.testing.assert_close(sac.td_target(batch), batch.reward + discount * (1.0 - batch.done) * v)


def test_n_step_returns_by_hand() -> None:
    # Two worlds, γ = 0.5, n = 3. World 0 ends (time limit) at step 3 and starts again; world 1
    # runs on; step 1 of world 1 is an intervention. Rewards: world 0 gets t, world 1 gets 10 t.
    nstep = NStepReturns(3, gamma=0.5)
    out = []
    for t in range(5):
        obs = torch.tensor([[t], [100.0 + t]])
        out.append(nstep.push(obs, -obs, torch.tensor([t, 10.0 * t]), obs + 0.5, torch.zeros(2),
                              ended=torch.tensor([t == 3, False]), flag=torch.tensor([False, t == 1])))
    assert [len(o[0]) for o in out] == [0, 0, 2, 4, 1]
    obs, action, reward, next_obs, done, steps, flag = out[3]
    assert obs[:, 0].tolist() == [3.0, 2.0, 1.0, 101.0]  # world 0's three open transitions, world 1's from step 1
    assert action[:, 0].tolist() == [-3.0, -2.0, -1.0, -101.0]
    assert reward.tolist() == [3.0, 2 + 0.5 * 3, 1 + 0.5 * 2 + 0.25 * 3, 10 + 0.5 * 20 + 0.25 * 30]
    assert next_obs[:, 0].tolist() == [3.5, 3.5, 3.5, 103.5] and steps.tolist() == [1.0, 2.0, 3.0, 3.0]
    assert flag.tolist() == [False, False, False, True] and done.tolist() == [0.0] * 4
    assert out[2][2].tolist() == [0 + 0.5 * 1 + 0.25 * 2, 0 + 0.5 * 10 + 0.25 * 20]
    assert out[4][0][:, 0].tolist() == [102.0]  # world 0's new episode is one step old: nothing yet
    # A terminal step bootstraps nothing: its done reaches every transition it closes.
    nstep, one, no = NStepReturns(3, gamma=0.5), torch.ones(1, 1), torch.tensor([False])
    nstep.push(0 * one, 0 * one, torch.ones(1), one, torch.zeros(1), no)
    closed = nstep.push(one, 0 * one, torch.ones(1), one, torch.ones(1), no)
    assert closed[4].tolist() == [1.0, 1.0] and closed[5].tolist() == [1.0, 2.0] and closed[2].tolist() == [1.0, 1.5]


def test_one_step_returns_pass_unchanged() -> None:
    nstep = NStepReturns(1, gamma=0.9)
    obs, reward = torch.randn(4, 3), torch.randn(4)
    out = nstep.push(obs, obs[:, :2], reward, obs + 1, torch.tensor([0.0, 1.0, 0.0, 0.0]),
                     torch.tensor([False, True, True, False]))
    assert torch.equal(out[0], obs) and torch.equal(out[2], reward) and out[5].tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="n >= 1"):
        NStepReturns(0, gamma=0.9)


def filled(reward: float, n: int) -> ReplayBuffer:
    buffer = ReplayBuffer(2, 1, 100)
    buffer.add(torch.zeros(n, 2), torch.zeros(n, 1), torch.full((n,), reward), torch.zeros(n, 2), torch.zeros(n))
    return buffer


def test_symmetric_sampling_takes_half_from_demos() -> None:
    sampler = SymmetricSampler(filled(1.0, 10), filled(0.0, 50), demo_fraction=0.5)
    batch = sampler.sample(256, torch.Generator().manual_seed(0))
    assert batch.reward.shape == (256,) and batch.reward.sum().item() == 128
    assert SymmetricSampler(filled(1.0, 10), filled(0.0, 50), 0.25).sample(100).reward.sum().item() == 25
    assert SymmetricSampler(filled(1.0, 10), ReplayBuffer(2, 1, 10)).sample(64).reward.sum().item() == 64


def test_interventions_land_in_both_buffers() -> None:
    sampler = SymmetricSampler(ReplayBuffer(2, 1, 10), ReplayBuffer(2, 1, 10))
    obs = torch.arange(6.0).reshape(3, 2)
    add_intervention(sampler, obs, torch.ones(3, 1), torch.tensor([0.0, 1.0, 2.0]), obs + 1, torch.zeros(3),
                     intervention=torch.tensor([True, False, True]))
    assert len(sampler.online) == 3 and len(sampler.demos) == 2
    assert sampler.demos.obs[:2].tolist() == [[0.0, 1.0], [4.0, 5.0]]
    assert sampler.demos.reward[:2].tolist() == [0.0, 2.0]
    assert sampler.online.reward[:3].tolist() == [0.0, 1.0, 2.0]


def test_replay_buffer_wraps() -> None:
    buffer = ReplayBuffer(1, 1, 4)
    for i in range(3):
        buffer.add(torch.full((2, 1), float(i)), torch.zeros(2, 1), torch.zeros(2), torch.zeros(2, 1), torch.zeros(2))
    assert len(buffer) == 4 and sorted(buffer.obs[:, 0].tolist()) == [1.0, 1.0, 2.0, 2.0]


def test_replay_buffer_keeps_steps_and_reads_buffers_saved_without_them() -> None:
    buffer = ReplayBuffer(1, 1, 4)
    buffer.add(torch.zeros(3, 1), torch.zeros(3, 1), torch.zeros(3), torch.zeros(3, 1), torch.zeros(3),
               steps=torch.tensor([1.0, 2.0, 3.0]))
    state = buffer.state_dict()
    again = ReplayBuffer(1, 1, 4)
    again.load_state_dict(state)
    assert again.steps[:3].tolist() == [1.0, 2.0, 3.0]
    assert sorted(again.sample(64, torch.Generator().manual_seed(0)).steps.unique().tolist()) == [1.0, 2.0, 3.0]
    del state["steps"]  # a buffer written before transitions carried their steps
    again.load_state_dict(state)
    assert again.steps[:3].tolist() == [1.0, 1.0, 1.0]


# -- learning on a one-step task --------------------------------------------------------------
# obs s ~ U[-1, 1]^2, the best action is a* = 0.8 * s_0, reward = -(a - a*)^2, every episode ends
# after one step. The dataset mixes expert actions (a* + small noise) with uniformly random ones.

def one_step_data(n: int, expert_share: float, seed: int = 0) -> ReplayBuffer:
    gen = torch.Generator().manual_seed(seed)
    obs = torch.rand(n, 2, generator=gen) * 2 - 1
    best = 0.8 * obs[:, :1]
    expert = torch.rand(n, 1, generator=gen) < expert_share
    noisy_best = best + 0.05 * torch.randn(n, 1, generator=gen)
    action = torch.where(expert, noisy_best, torch.rand(n, 1, generator=gen) * 2 - 1)
    buffer = ReplayBuffer(2, 1, n)
    buffer.add(obs, action, -(action - best).pow(2).squeeze(1), obs, torch.ones(n))
    return buffer


def action_error(actor) -> float:
    obs = torch.rand(512, 2, generator=torch.Generator().manual_seed(99)) * 2 - 1
    with torch.no_grad():
        return (actor(obs) - 0.8 * obs[:, :1]).abs().mean().item()


NET = NetConfig(hidden=(64, 64), lr=1e-3, batch_size=128)


def train(algo, buffer: ReplayBuffer, updates: int) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(updates):
        algo.update(buffer.sample(NET.batch_size, gen))


def test_bc_learns_from_expert_data() -> None:
    torch.manual_seed(0)
    bc = BC(2, 1, NET)
    train(bc, one_step_data(2000, 1.0), 800)
    assert action_error(bc.actor) < 0.06


def test_iql_beats_bc_on_mixed_data() -> None:
    data = one_step_data(4000, 0.3)
    torch.manual_seed(0)
    bc, iql = BC(2, 1, NET), IQL(2, 1, NET, IQLConfig())
    train(bc, data, 1500)
    train(iql, data, 1500)
    bc_error, iql_error = action_error(bc.actor), action_error(iql.actor)
    assert iql_error < 0.15 and iql_error < 0.7 * bc_error, (iql_error, bc_error)


def test_td3bc_learns_on_mixed_data() -> None:
    torch.manual_seed(0)
    td3 = TD3BC(2, 1, NET, TD3BCConfig(), generator=torch.Generator().manual_seed(0))
    train(td3, one_step_data(4000, 0.3), 1500)
    assert action_error(td3.actor) < 0.15


def test_sac_learns_online_and_rlpd_with_demos() -> None:
    """SAC on the one-step task, acting and storing online; with RLPD options and demos."""
    for cfg, demos in ((SACConfig(ensemble=2, subset=2, layer_norm=False, utd=1), None),
                       (SACConfig(ensemble=4, subset=2, layer_norm=True, utd=2), one_step_data(200, 1.0))):
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        sac = SAC(2, 1, NET, cfg, generator=gen)
        online = ReplayBuffer(2, 1, 10_000)
        sampler = SymmetricSampler(demos or ReplayBuffer(2, 1, 1), online)
        for _ in range(400):
            obs = torch.rand(16, 2, generator=gen) * 2 - 1
            action = sac.act(obs)
            online.add(obs, action, -(action - 0.8 * obs[:, :1]).pow(2).squeeze(1), obs, torch.ones(16))
            sac.update(sampler, batch_size=128)
        assert action_error(sac.actor) < 0.15, cfg
