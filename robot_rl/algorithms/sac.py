"""Soft actor-critic with RLPD's options (Ball, Smith, Kostrikov & Levine, 2023).

RLPD = SAC + symmetric sampling (half of every batch from the demo buffer, half online; see
:class:`~robot_rl.algorithms.replay.SymmetricSampler`) + an ensemble of E LayerNorm critics whose
target takes the minimum over a random subset of 2 members + a high update-to-data ratio (G
critic updates per environment step, the actor once). With E = 2, no LayerNorm, G = 1 and no
demos it is plain SAC.

    y = r + γ (1 - d) (min_{i ∈ S} Q̄_i(s', a') - α log π(a' | s')),   a' ~ π(s'), S ⊂ {1..E}, |S| = 2
    (n-step transitions: r = Σ_{k<m} γ^k r_k, s' the state m steps on, γ^m in place of γ)
    L_π = E[ α log π(a | s) - mean_i Q_i(s, a) ],   a ~ π(s)
    L_α = -E[ log α (log π(a | s) + H̄) ]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from robot_rl.algorithms.networks import mlp, state_differences
from robot_rl.algorithms.replay import Batch, Critic, FixedNorm, soft_update
from robot_rl.configs.offline import NetConfig, SACConfig


class SquashedGaussianActor(nn.Module):
    """a = tanh(μ(s) + σ(s) ε). ``actor_norm`` then ``actor`` give the deterministic tanh(μ(s))
    (what :class:`robot_rl.training.export.DeployedPolicy` exports)."""

    def __init__(self, norm: FixedNorm, obs_dim: int, action_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.actor_norm = norm
        self.actor = nn.Sequential(mlp(obs_dim, hidden, action_dim, "relu"), nn.Tanh())
        self.std_head = mlp(obs_dim, hidden, action_dim, "relu")

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.actor_norm(obs))

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None,
               eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(action float[B, A], log-probability float[B]), reparameterised; ``eps`` float[B, A]
        is the standard normal noise to use (default: drawn from ``generator``)."""
        x = self.actor_norm(obs)
        mean = self.actor[0](x)
        std = self.std_head(x).clamp(-5.0, 2.0).exp()
        if eps is None:
            eps = torch.randn(mean.shape, generator=generator)
        u = mean + std * eps
        action = torch.tanh(u)
        log_prob = (-0.5 * eps.pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)  # tanh Jacobian
        return action, log_prob


def subset_members(ensemble: int, subset: int, generator: torch.Generator | None = None) -> list[int]:
    """A random ``subset`` of the members 0..ensemble-1 (one subset per target, as RLPD/REDQ)."""
    return torch.randperm(ensemble, generator=generator)[:subset].tolist()


class SAC:
    def __init__(self, obs_dim: int, action_dim: int, net: NetConfig, cfg: SACConfig,
                 norm: FixedNorm | None = None, generator: torch.Generator | None = None) -> None:
        if cfg.subset > cfg.ensemble:
            raise ValueError(f"sac.subset ({cfg.subset}) cannot exceed sac.ensemble ({cfg.ensemble})")
        norm = norm or FixedNorm.identity(obs_dim)
        self.cfg, self.net, self.generator = cfg, net, generator
        self.actor = SquashedGaussianActor(norm, obs_dim, action_dim, net.hidden)
        self.critic = Critic(copy.deepcopy(norm), obs_dim, action_dim, net.hidden, cfg.ensemble, cfg.layer_norm)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(cfg.init_temperature), requires_grad=True)
        self.target_entropy = cfg.target_entropy if cfg.target_entropy is not None else -action_dim / 2
        # The fused Adam kernel: RLPD's 10-critic update is ~17% faster on one CPU thread
        # (benchmarks/sac_update.py measures the update).
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=net.lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=net.lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=net.lr, fused=True)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False, eps: torch.Tensor | None = None) -> torch.Tensor:
        """float[B, A] actions for obs float[B, P]; ``eps`` float[B, A]: the sampling noise
        (e.g. :class:`~robot_rl.algorithms.noise.ColoredNoise`), default independent draws."""
        return self.actor(obs) if deterministic else self.actor.sample(obs, self.generator, eps)[0]

    @torch.no_grad()
    def td_target(self, batch: Batch) -> torch.Tensor:
        """float[B]: r + γᵐ(1 − done)(min over a random subset of target critics of Q(s', a')
        − α·log π(a'|s') when ``backup_entropy``), a' sampled from the policy; m is the batch's
        ``steps`` (n-step transitions: r is then the discounted sum of their m rewards), else 1."""
        next_action, next_log_prob = self.actor.sample(batch.next_obs, self.generator)
        # Only the drawn members' targets are evaluated: with E = 10 and a subset of 2 that
        # is a fifth of the target forward pass (benchmarks/sac_update.py).
        members = subset_members(self.cfg.ensemble, self.cfg.subset, self.generator)
        next_v = self.critic_target(batch.next_obs, next_action, members).min(0).values
        if self.cfg.backup_entropy:
            next_v = next_v - self.log_alpha.exp() * next_log_prob
        discount = self.cfg.gamma if batch.steps is None else self.cfg.gamma ** batch.steps
        return batch.reward + discount * (1.0 - batch.done) * next_v

    def update_critic(self, batch: Batch) -> float:
        target = self.td_target(batch)
        loss = (self.critic(batch.obs, batch.action) - target).pow(2).mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        soft_update(self.critic_target, self.critic, self.cfg.tau)
        return float(loss.detach())

    def update_actor(self, batch: Batch) -> dict[str, float]:
        action, log_prob = self.actor.sample(batch.obs, self.generator)
        q = self.critic(batch.obs, action).mean(0)
        alpha = self.log_alpha.exp()
        actor_loss = (alpha.detach() * log_prob - q).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        return {"loss/actor": float(actor_loss.detach()), "train/alpha": float(alpha.detach()),
                "train/entropy": float(-log_prob.mean().detach()), "train/q": float(q.mean().detach())}

    def update(self, sampler, batch_size: int | None = None, utd: int | None = None) -> dict[str, float]:
        """``utd`` (default ``cfg.utd``) critic updates on batches from ``sampler`` (anything with
        ``sample(batch_size, generator) -> Batch``), then one actor and temperature update."""
        batch_size = batch_size or self.net.batch_size
        losses = [self.update_critic(batch := sampler.sample(batch_size, self.generator))
                  for _ in range(utd or self.cfg.utd)]
        return {"loss/critic": sum(losses) / len(losses), **self.update_actor(batch)}

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "log_alpha": self.log_alpha.detach(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the actor with its normaliser, the critics
        and their targets, the temperature and the three optimisers), so updates continue as if
        they had never stopped; the random generator is the caller's (it is shared with the
        sampler). Raises ValueError naming the differences, and changes nothing, when ``state``
        is not a SAC state or its networks have other sizes (``net.hidden``, ``sac.ensemble``,
        ``sac.layer_norm``, observation or action size)."""
        missing = sorted(set(self.state_dict()) - set(state))
        if missing:
            raise ValueError(f"not a SAC state: {', '.join(missing)} missing")
        problems = [p for name in ("actor", "critic", "critic_target")
                    for p in state_differences(getattr(self, name).state_dict(), state[name], f"{name}.")]
        if tuple(torch.as_tensor(state["log_alpha"]).shape) != tuple(self.log_alpha.shape):
            problems.append(f"log_alpha is {list(torch.as_tensor(state['log_alpha']).shape)} where a scalar is "
                            "expected")
        if problems:
            raise ValueError("the saved networks differ from these: " + "; ".join(problems[:4])
                             + (f"; and {len(problems) - 4} more" if len(problems) > 4 else ""))
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():  # in place: alpha_opt holds this tensor
            self.log_alpha.copy_(torch.as_tensor(state["log_alpha"]))
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
