"""Generalised advantage estimation with time-outs kept apart from terminations."""

from __future__ import annotations

import torch


def bootstrap_time_outs(rewards: torch.Tensor, truncated: torch.Tensor, final_values: torch.Tensor,
                        gamma: float) -> torch.Tensor:
    """A world cut off by the time limit did not fail: credit it with the discounted value of
    the state it was in. rewards, final_values float[N], truncated bool[N] -> float[N]."""
    return rewards + gamma * final_values * truncated.float()


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_values: torch.Tensor,
        gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns, both float[T, N].

    Args:
        rewards: float[T, N] (time-outs already bootstrapped).
        values: float[T, N], V(s_t).
        dones: bool[T, N], the episode ended after step t (terminated or truncated).
        last_values: float[N], V(s_T) for the state after the last step.

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)
    A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1};  returns = A + V.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(last_values)
    next_value = last_values
    not_done = 1.0 - dones.float()
    for t in reversed(range(steps)):
        delta = rewards[t] + gamma * next_value * not_done[t] - values[t]
        next_advantage = delta + gamma * lam * not_done[t] * next_advantage
        advantages[t] = next_advantage
        next_value = values[t]
    return advantages, advantages + values
