"""Networks shared by the algorithms: MLPs, running observation normalisation, actor-critic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, activation: str = "elu") -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), ACTIVATIONS[activation]()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class RunningNorm(nn.Module):
    """Normalises float[B, D] by a running mean and variance of everything it was updated with.

    Under torch.distributed the statistics of every process's batch are combined, so all
    processes normalise identically.
    """

    def __init__(self, dim: int, eps: float = 1e-8, clip: float = 10.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.eps, self.clip = eps, clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch float[B, D] into the statistics (Chan et al.'s parallel variance)."""
        stats = torch.cat([x.sum(0), (x * x).sum(0), torch.tensor([x.shape[0]], dtype=x.dtype, device=x.device)])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)
        d = x.shape[1]
        n = stats[-1].to(torch.float64)
        batch_mean = stats[:d] / n
        batch_var = (stats[d:2 * d] / n - batch_mean**2).clamp_min(0.0)
        total = self.count + n
        delta = batch_mean - self.mean
        w = (n / total).to(x.dtype)
        self.mean += delta * w
        self.var = self.var * (1 - w) + batch_var * w + delta**2 * w * (1 - w)
        self.count = total


class ActorCritic(nn.Module):
    """Gaussian actor on one observation group, value critic on another (asymmetric).

    Shapes: actor_obs float[B, P], critic_obs float[B, Q], actions float[B, A].
    """

    def __init__(self, actor_dim: int, critic_dim: int, action_dim: int, actor_hidden: tuple[int, ...],
                 critic_hidden: tuple[int, ...], activation: str = "elu", init_noise_std: float = 1.0,
                 normalize_obs: bool = True) -> None:
        super().__init__()
        self.actor_norm = RunningNorm(actor_dim) if normalize_obs else nn.Identity()
        self.critic_norm = RunningNorm(critic_dim) if normalize_obs else nn.Identity()
        self.actor = mlp(actor_dim, actor_hidden, action_dim, activation)
        self.critic = mlp(critic_dim, critic_hidden, 1, activation)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(torch.log(torch.tensor(init_noise_std)))))
        # Small last actor layer: initial actions near zero, so early exploration is the noise.
        nn.init.orthogonal_(self.actor[-1].weight, gain=0.01)
        nn.init.zeros_(self.actor[-1].bias)

    def update_normalizers(self, actor_obs: torch.Tensor, critic_obs: torch.Tensor) -> None:
        for norm, x in ((self.actor_norm, actor_obs), (self.critic_norm, critic_obs)):
            if isinstance(norm, RunningNorm):
                norm.update(x)

    def action_mean(self, actor_obs: torch.Tensor) -> torch.Tensor:
        """float[B, A]: the deterministic action."""
        return self.actor(self.actor_norm(actor_obs))

    def distribution(self, actor_obs: torch.Tensor) -> torch.distributions.Normal:
        mean = self.action_mean(actor_obs)
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))

    def value(self, critic_obs: torch.Tensor) -> torch.Tensor:
        """float[B]"""
        return self.critic(self.critic_norm(critic_obs)).squeeze(-1)


def state_differences(current: Mapping[str, Any], saved: Mapping[str, Any], prefix: str = "") -> list[str]:
    """How the tensors (or arrays) ``saved`` differ from ``current`` in names and shapes, one
    line each, e.g. ``actor.0.weight is [32, 6] where [64, 6] is expected``; empty when they fit."""
    out = [f"{prefix}{k} is missing" for k in current if k not in saved]
    out += [f"{prefix}{k} is unexpected" for k in saved if k not in current]
    out += [f"{prefix}{k} is {list(saved[k].shape)} where {list(v.shape)} is expected"
            for k, v in current.items() if k in saved and tuple(saved[k].shape) != tuple(v.shape)]
    return out
