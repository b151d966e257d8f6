"""TD3+BC (Fujimoto & Gu, 2021): TD3 whose actor also regresses onto the dataset's actions.

    L_π = -λ E[Q_1(s, π(s))] + E[(π(s) - a)²],   λ = α / E|Q_1(s, π(s))|   (α = 2.5; λ not differentiated)

Critics: twin Q with target policy smoothing (noise 0.2 clipped at 0.5), actor updated every
second step, Polyak-averaged targets; observations normalised by the dataset's statistics.
"""

from __future__ import annotations

import copy

import torch

from robot_rl.algorithms.replay import Batch, Critic, DeterministicActor, FixedNorm, soft_update
from robot_rl.configs.offline import NetConfig, TD3BCConfig


def td3bc_actor_loss(q: torch.Tensor, policy_action: torch.Tensor, data_action: torch.Tensor,
                     alpha: float) -> torch.Tensor:
    """-λ mean(q) + mean((π(s) - a)²) with λ = α / mean|q| (detached); q float[B], actions float[B, A]."""
    lam = alpha / q.abs().mean().detach().clamp_min(1e-6)
    return -lam * q.mean() + (policy_action - data_action).pow(2).mean()


class TD3BC:
    def __init__(self, obs_dim: int, action_dim: int, net: NetConfig, cfg: TD3BCConfig,
                 norm: FixedNorm | None = None, generator: torch.Generator | None = None) -> None:
        norm = norm or FixedNorm.identity(obs_dim)
        self.cfg, self.generator = cfg, generator
        self.actor = DeterministicActor(norm, obs_dim, action_dim, net.hidden)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic = Critic(copy.deepcopy(norm), obs_dim, action_dim, net.hidden, ensemble=2)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=net.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=net.lr)
        self.steps = 0
        self.last_actor_loss = float("nan")

    def update(self, batch: Batch) -> dict[str, float]:
        cfg = self.cfg
        with torch.no_grad():
            noise = torch.randn(batch.action.shape, generator=self.generator) * cfg.policy_noise
            next_action = (self.actor_target(batch.next_obs) + noise.clamp(-cfg.noise_clip, cfg.noise_clip))
            next_q = self.critic_target(batch.next_obs, next_action.clamp(-1.0, 1.0)).min(0).values
            target = batch.reward + cfg.gamma * (1.0 - batch.done) * next_q
        q = self.critic(batch.obs, batch.action)
        critic_loss = (q - target).pow(2).mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.steps += 1
        if self.steps % cfg.policy_delay == 0:
            pi = self.actor(batch.obs)
            actor_loss = td3bc_actor_loss(self.critic(batch.obs, pi)[0], pi, batch.action.clamp(-1.0, 1.0),
                                          cfg.alpha)
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            soft_update(self.critic_target, self.critic, cfg.tau)
            soft_update(self.actor_target, self.actor, cfg.tau)
            self.last_actor_loss = float(actor_loss.detach())
        return {"loss/critic": float(critic_loss.detach()), "loss/actor": self.last_actor_loss,
                "train/q": float(q.mean().detach())}

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "actor_target": self.actor_target.state_dict(), "critic_target": self.critic_target.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict()}
