"""Evaluate a policy on complete episodes and film it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from robot_rl.envs.vec_env import Obs, VecEnv

Policy = Callable[[Obs], torch.Tensor]
"""Maps a batched observation to actions float[N, A]."""


@dataclass
class EvalResult:
    episodes: int
    success_rate: float | None
    """None when the environment has no success predicate (e.g. Gymnasium tasks)."""
    mean_return: float
    std_return: float
    mean_length: float
    returns: list[float]
    successes: list[bool]

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class FirstEpisodes:
    """Every world's first episode: per-world tensors float[N] / bool[N]."""

    returns: torch.Tensor
    lengths: torch.Tensor
    success: torch.Tensor
    """The task's success predicate at the episode's last step."""
    terminated: torch.Tensor
    """The episode ended before the time limit (a fall, an object off the table)."""
    has_success: bool
    """Whether the env reports success at all."""


@torch.no_grad()
def first_episodes(policy: Policy, env: VecEnv, max_steps: int, seed: int,
                   before_step: Callable[[int, Obs], None] | None = None) -> FirstEpisodes:
    """Run each of ``env``'s worlds until its first episode ends (or ``max_steps``);
    ``before_step(t, obs)`` runs before every step (e.g. to push the robot)."""
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    returns = torch.zeros(n, device=env.device)
    lengths = torch.zeros(n, device=env.device)
    success = torch.zeros(n, dtype=torch.bool, device=env.device)
    ended_early = torch.zeros_like(success)
    has_success = False
    running = torch.ones(n, dtype=torch.bool, device=env.device)
    for t in range(max_steps):
        if before_step is not None:
            before_step(t, obs)
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        returns += reward * running
        lengths += running.float()
        done = (terminated | truncated) & running
        ended_early |= terminated & running
        if "success" in info:
            has_success = True
            success |= info["success"] & done
        running &= ~done
        if not running.any():
            break
    return FirstEpisodes(returns, lengths, success, ended_early, has_success)


def evaluate(policy: Policy, env: VecEnv, episodes: int, max_steps: int, seed: int = 12345) -> EvalResult:
    """Run each of ``env``'s worlds until its first episode ends and report the first
    ``episodes`` of them (``env.num_envs`` must be at least ``episodes``). Success is the
    task's success predicate at the episode's last step."""
    if env.num_envs < episodes:
        raise ValueError(f"evaluation needs at least {episodes} worlds, the env has {env.num_envs}")
    run = first_episodes(policy, env, max_steps, seed)
    returns, lengths, success = run.returns, run.lengths, run.success
    r = returns[:episodes].cpu().numpy()
    rate = float(success[:episodes].float().mean()) if run.has_success else None
    return EvalResult(episodes=episodes, success_rate=rate,
                      mean_return=float(r.mean()), std_return=float(r.std()),
                      mean_length=float(lengths[:episodes].mean()), returns=[float(x) for x in r],
                      successes=[bool(s) for s in success[:episodes].tolist()])


@torch.no_grad()
def film(policy: Policy, env, steps: int, height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    """Frames uint8[T, H, W, 3] of world 0 of ``env`` (which needs a ``render`` method)."""
    obs, _ = env.reset(seed=seed)
    frames = []
    for _ in range(steps):
        obs, *_ = env.step(policy(obs))
        frames.append(env.render(height=height, width=width, env_ids=torch.tensor([0]))[0].cpu().numpy())
    return np.stack(frames)
