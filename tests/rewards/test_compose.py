"""RewardWrapper: reward composition, normalisation, gating, logging and post-step scoring,
on a hand-made VecEnv whose images encode each world's step counter."""

from __future__ import annotations

import pytest
import torch

from robot_rl.rewards.base import RewardOutput
from robot_rl.rewards.compose import RewardTerm, RewardWrapper, RunningMeanStd, rendering

N = 3
LENGTHS = torch.tensor([2, 3, 4])
"""World i is truncated after LENGTHS[i] steps, then resets its counter to 0."""


class CounterTask:
    @staticmethod
    def reward_term_names() -> tuple[str, ...]:
        return ("progress",)


class CounterEnv:
    """World i counts its steps t; images: "front" filled with t, "wrist" with 2t; the task
    reward is 0.1·t; success once t >= 2. Done worlds reset to t = 0 inside ``step``."""

    def __init__(self) -> None:
        self.num_envs, self.device, self.action_dim = N, torch.device("cpu"), 1
        self.obs_dims = {"policy": 1}
        self.action_low, self.action_high = -torch.ones(1), torch.ones(1)
        self.goal = "count to four"
        self.image_cameras, self.image_size = ("front", "wrist"), (4, 4)
        self.control_dt, self.max_episode_steps = 0.1, 4
        self.task = CounterTask()
        self.t = torch.zeros(N, dtype=torch.long)
        self.closed = False

    def _obs(self) -> dict:
        fill = self.t.to(torch.uint8)[:, None, None, None].expand(N, 4, 4, 3)
        return {"policy": self.t.float()[:, None], "rgb": {"front": fill.clone(), "wrist": (2 * fill).clone()}}

    def reset(self, seed: int | None = None):
        self.t.zero_()
        return self._obs(), {}

    def step(self, actions: torch.Tensor):
        self.t += 1
        task = 0.1 * self.t.float()
        truncated = self.t >= LENGTHS
        info = {"reward_terms": {"progress": task.clone()}, "success": self.t >= 2, "final_obs": self._obs()}
        self.t[truncated] = 0
        return self._obs(), task, torch.zeros(N, dtype=torch.bool), truncated, info

    def render(self, camera=None, height=4, width=4, env_ids=None) -> torch.Tensor:
        return torch.zeros(1, height, width, 3, dtype=torch.uint8)

    def close(self) -> None:
        self.closed = True


class MeanPixel:
    """reward = mean pixel over all views: (t + 2t)/2 = 1.5·t with both cameras."""

    uses_images, uses_state = True, False

    def score(self, images, state, goal) -> RewardOutput:
        assert images.dtype == torch.uint8 and images.shape[0] == N and images.shape[2:] == (4, 4, 3)
        return RewardOutput(reward=images.float().mean(dim=(1, 2, 3, 4)))


class StateCopy:
    uses_images, uses_state = False, True

    def score(self, images, state, goal) -> RewardOutput:
        assert images is None
        return RewardOutput(reward=state[:, 0].clone())


def rollout(env: RewardWrapper, steps: int):
    """Post-step counters float[steps, N] and each step's (reward, info)."""
    env.reset(seed=0)
    t = torch.zeros(N)
    counters, results = [], []
    for _ in range(steps):
        t = t + 1
        counters.append(t.clone())
        _, reward, terminated, truncated, info = env.step(torch.zeros(N, 1))
        results.append((reward, info))
        t[terminated | truncated] = 0
    return torch.stack(counters), results


def test_reward_is_task_weight_times_task_plus_weighted_modules() -> None:
    terms = [RewardTerm(MeanPixel(), "pixels", weight=2.0, cameras=("front", "wrist")),
             RewardTerm(StateCopy(), "state", weight=-1.0)]
    env = RewardWrapper(CounterEnv(), terms, task_weight=0.5)
    counters, results = rollout(env, 6)
    for t, (reward, info) in zip(counters, results):
        # t is the post-step counter: a world that just finished is scored on its final observation
        torch.testing.assert_close(reward, 0.5 * 0.1 * t + 2.0 * 1.5 * t - 1.0 * t)
        terms = info["reward_terms"]
        assert list(terms) == ["progress", "task/raw", "pixels", "pixels/raw", "state", "state/raw"]
        assert env.reward_term_names() == tuple(terms)
        torch.testing.assert_close(terms["pixels/raw"], 1.5 * t)
        torch.testing.assert_close(terms["pixels"], 3.0 * t)
        torch.testing.assert_close(terms["task/raw"], 0.1 * t)
        torch.testing.assert_close(terms["progress"], 0.05 * t)
        summed = sum(v for k, v in terms.items() if "/" not in k)
        torch.testing.assert_close(summed, reward)


def test_worlds_that_reset_are_scored_on_their_final_observation() -> None:
    env = RewardWrapper(CounterEnv(), [RewardTerm(MeanPixel(), "front", cameras=("front",))])
    env.reset()
    env.step(torch.zeros(N, 1))
    obs, reward, _, truncated, info = env.step(torch.zeros(N, 1))
    assert truncated.tolist() == [True, False, False]
    assert obs["rgb"]["front"][0].max() == 0  # world 0 already reset
    torch.testing.assert_close(info["reward_terms"]["front/raw"], torch.tensor([2.0, 2.0, 2.0]))


def test_task_weight_zero_replaces_the_task_reward() -> None:
    env = RewardWrapper(CounterEnv(), [RewardTerm(MeanPixel(), "pixels", weight=0.5, cameras=("wrist",))],
                        task_weight=0.0)
    counters, results = rollout(env, 5)
    for t, (reward, info) in zip(counters, results):
        torch.testing.assert_close(reward, 0.5 * 2 * t)
        assert list(info["reward_terms"]) == ["task/raw", "pixels", "pixels/raw"]
        torch.testing.assert_close(info["reward_terms"]["task/raw"], 0.1 * t)  # still logged


def test_running_normalisation_uses_all_rewards_so_far() -> None:
    env = RewardWrapper(CounterEnv(), [RewardTerm(MeanPixel(), "pixels", weight=2.0, cameras=("front",),
                                                  normalize=True)], task_weight=0.0)
    counters, results = rollout(env, 7)
    for i, (reward, info) in enumerate(results):
        seen = counters[: i + 1].flatten().double()  # raw rewards so far: the counters (front only)
        expected = (counters[i] - seen.mean()) / torch.sqrt(seen.var(unbiased=False) + 1e-8)
        torch.testing.assert_close(info["reward_terms"]["pixels"], 2.0 * expected.float())
        torch.testing.assert_close(reward, 2.0 * expected.float())
    assert env.stats["pixels"].count == 7 * N


def test_until_success_gate_uses_the_module_only_before_success() -> None:
    env = RewardWrapper(CounterEnv(), [RewardTerm(MeanPixel(), "pixels", cameras=("front",), gate="until_success")])
    counters, results = rollout(env, 6)
    for t, (reward, info) in zip(counters, results):
        dense = torch.where(t >= 2, 0.0, t)  # success once t >= 2
        torch.testing.assert_close(info["reward_terms"]["pixels"], dense)
        torch.testing.assert_close(info["reward_terms"]["pixels/raw"], t)  # raw is logged ungated
        torch.testing.assert_close(reward, 0.1 * t + dense)


def test_running_mean_std_matches_batch_statistics() -> None:
    stats = RunningMeanStd()
    batches = [torch.randn(n, generator=torch.Generator().manual_seed(n)) * 3 + 1 for n in (1, 5, 17, 64)]
    for b in batches:
        stats.update(b)
    everything = torch.cat(batches).double()
    torch.testing.assert_close(stats.mean, everything.mean())
    torch.testing.assert_close(stats.var, everything.var(unbiased=False))
    assert stats.count == 87


def test_wrapper_keeps_the_vec_env_protocol_and_passes_attributes_through() -> None:
    from robot_rl.envs.vec_env import VecEnv

    inner = CounterEnv()
    env = RewardWrapper(inner, [RewardTerm(MeanPixel(), "pixels", cameras=("front",))])
    assert isinstance(env, VecEnv)
    assert (env.num_envs, env.action_dim, env.obs_dims, env.goal) == (N, 1, {"policy": 1}, "count to four")
    assert env.task is inner.task and env.control_dt == 0.1 and env.max_episode_steps == 4
    assert env.image_cameras == ("front", "wrist") and env.render(height=2, width=3).shape == (1, 2, 3, 3)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"policy", "rgb"}
    env.close()
    assert inner.closed


def test_configuration_mistakes_are_reported() -> None:
    with pytest.raises(ValueError, match=r"reads cameras \['top'\] but the env renders \['front', 'wrist'\]"):
        RewardWrapper(CounterEnv(), [RewardTerm(MeanPixel(), "pixels", cameras=("top",))])
    with pytest.raises(ValueError, match="scores images: give it cameras"):
        RewardWrapper(CounterEnv(), [RewardTerm(MeanPixel(), "pixels")])
    with pytest.raises(ValueError, match="gate must be one of none, until_success"):
        RewardWrapper(CounterEnv(), [RewardTerm(MeanPixel(), "pixels", cameras=("front",), gate="always")])
    with pytest.raises(ValueError, match="distinct names"):
        RewardWrapper(CounterEnv(), [RewardTerm(StateCopy(), "a"), RewardTerm(StateCopy(), "a")])
    with pytest.raises(ValueError, match=r"wants images of \(8, 8\), the env renders \(4, 4\)"):
        RewardWrapper(CounterEnv(), [RewardTerm(MeanPixel(), "pixels", cameras=("front",), image_size=(8, 8))])
    with pytest.raises(ValueError, match="one image_size"):
        rendering([RewardTerm(MeanPixel(), "a", cameras=("front",), image_size=(8, 8)),
                   RewardTerm(MeanPixel(), "b", cameras=("wrist",), image_size=(4, 4))])
    assert rendering([RewardTerm(MeanPixel(), "a", cameras=("front",), image_size=(4, 4)),
                      RewardTerm(MeanPixel(), "b", cameras=("wrist", "front"), image_size=(4, 4)),
                      RewardTerm(StateCopy(), "c")]) == (("front", "wrist"), (4, 4))
