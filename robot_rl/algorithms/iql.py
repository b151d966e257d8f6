"""Implicit Q-learning (Kostrikov, Nair & Levine, 2021).

V is fitted to Q by expectile regression, so it approximates the best action's value seen in
the data without querying actions outside it; Q regresses onto r + γ(1 - d)V(s'); the policy is
extracted by advantage-weighted regression with weights exp(β·(Q(s, a) - V(s))), clipped.

    L_V = E[ |τ - 1(u < 0)| u² ],  u = Q_target(s, a) - V(s)          (expectile τ = 0.7)
    L_Q = E[ (r + γ (1 - d) V(s') - Q_i(s, a))² ]  for both Q_i
    L_π = -E[ min(exp(β (Q_target(s, a) - V(s))), w_max) log π(a | s) ]   (β = 3, w_max = 100)
"""

from __future__ import annotations

import copy

import torch

from robot_rl.algorithms.replay import Batch, Critic, FixedNorm, GaussianActor, ValueNet, soft_update
from robot_rl.configs.offline import IQLConfig, NetConfig


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Mean of |τ - 1(u < 0)| u² over diff u = Q - V float[B]."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.pow(2)).mean()


def awr_weights(advantage: torch.Tensor, temperature: float, max_weight: float) -> torch.Tensor:
    """float[B]: exp(β·A), clipped at ``max_weight``."""
    return torch.exp(temperature * advantage).clamp(max=max_weight)


class IQL:
    def __init__(self, obs_dim: int, action_dim: int, net: NetConfig, cfg: IQLConfig,
                 norm: FixedNorm | None = None) -> None:
        norm = norm or FixedNorm.identity(obs_dim)
        self.cfg = cfg
        self.actor = GaussianActor(norm, obs_dim, action_dim, net.hidden)
        self.critic = Critic(copy.deepcopy(norm), obs_dim, action_dim, net.hidden, ensemble=2)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.value = ValueNet(copy.deepcopy(norm), obs_dim, net.hidden)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=net.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=net.lr)
        self.value_opt = torch.optim.Adam(self.value.parameters(), lr=net.lr)

    def update(self, batch: Batch) -> dict[str, float]:
        cfg = self.cfg
        with torch.no_grad():
            q_target = self.critic_target(batch.obs, batch.action).min(0).values
        v = self.value(batch.obs)
        value_loss = expectile_loss(q_target - v, cfg.expectile)
        self.value_opt.zero_grad(set_to_none=True)
        value_loss.backward()
        self.value_opt.step()

        with torch.no_grad():
            target = batch.reward + cfg.gamma * (1.0 - batch.done) * self.value(batch.next_obs)
        q = self.critic(batch.obs, batch.action)
        critic_loss = (q - target).pow(2).mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        weights = awr_weights(q_target - v.detach(), cfg.temperature, cfg.max_weight)
        actor_loss = -(weights * self.actor.log_prob(batch.obs, batch.action.clamp(-1.0, 1.0))).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        soft_update(self.critic_target, self.critic, cfg.tau)
        return {"loss/value": float(value_loss.detach()), "loss/critic": float(critic_loss.detach()),
                "loss/actor": float(actor_loss.detach()), "train/q": float(q_target.mean()),
                "train/weight": float(weights.mean())}

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "value": self.value.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "value_opt": self.value_opt.state_dict()}
