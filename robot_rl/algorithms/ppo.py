"""Proximal policy optimisation with an asymmetric (privileged) critic.

The recipe follows rsl_rl's PPO as used for legged robots: clipped surrogate, clipped value
loss, entropy bonus, gradient clipping, an adaptive-KL learning rate, and time-outs
bootstrapped from the value of the state the episode was cut off in. Under torch.distributed
each process collects its own rollouts and gradients are averaged across processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from robot_rl.algorithms.buffers import RolloutBuffer
from robot_rl.algorithms.gae import bootstrap_time_outs, gae
from robot_rl.algorithms.networks import ActorCritic
from robot_rl.configs.train import PPOConfig


def surrogate_loss(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor,
                   clip: float) -> torch.Tensor:
    """Clipped policy loss, a scalar: mean of max(-r·A, -clip(r, 1±clip)·A), r = π/π_old."""
    ratio = torch.exp(log_probs - old_log_probs)
    return torch.max(-advantages * ratio, -advantages * ratio.clamp(1.0 - clip, 1.0 + clip)).mean()


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               clip: float | None) -> torch.Tensor:
    """Squared error to the returns, a scalar; with ``clip``, the larger of the clipped and
    unclipped errors, so one update cannot move the value far from the one that collected."""
    if clip is None:
        return (returns - values).pow(2).mean()
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return torch.max((values - returns).pow(2), (clipped - returns).pow(2)).mean()


def gaussian_kl(mu_old: torch.Tensor, std_old: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(old || new) for diagonal Gaussians float[B, A] -> scalar."""
    kl = torch.log(std / std_old) + (std_old.pow(2) + (mu_old - mu).pow(2)) / (2.0 * std.pow(2)) - 0.5
    return kl.sum(dim=-1).mean()


def adapt_lr(lr: float, kl: float, cfg: PPOConfig) -> float:
    """rsl_rl's rule: shrink by 1.5 when KL > 2·desired, grow by 1.5 when KL < desired/2."""
    if kl > 2.0 * cfg.desired_kl:
        lr /= 1.5
    elif kl < 0.5 * cfg.desired_kl:
        lr *= 1.5
    return min(max(lr, cfg.lr_min), cfg.lr_max)


@dataclass
class UpdateStats:
    surrogate: float
    value: float
    entropy: float
    kl: float
    lr: float
    action_std: float


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


class PPO:
    """Owns the actor-critic, its optimiser and the rollout buffer."""

    def __init__(self, cfg: PPOConfig, actor_dim: int, critic_dim: int, action_dim: int, num_envs: int,
                 device: torch.device, generator: torch.Generator | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.model = ActorCritic(actor_dim, critic_dim, action_dim, cfg.actor_hidden, cfg.critic_hidden,
                                 cfg.activation, cfg.init_noise_std, cfg.normalize_obs).to(device)
        if _distributed():  # every process starts from rank 0's weights
            for tensor in self.model.state_dict().values():
                dist.broadcast(tensor, src=0)
        self.lr = cfg.lr
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.buffer = RolloutBuffer(cfg.num_steps, num_envs, actor_dim, critic_dim, action_dim, device)
        self.generator = generator

    @torch.no_grad()
    def act(self, actor_obs: torch.Tensor, critic_obs: torch.Tensor) -> torch.Tensor:
        """Sample actions float[N, A] and store what the update needs (call :meth:`record` next)."""
        self.model.update_normalizers(actor_obs, critic_obs)
        dist_ = self.model.distribution(actor_obs)
        actions = dist_.mean + dist_.stddev * torch.randn(dist_.mean.shape, generator=self.generator,
                                                          device=self.device)
        self._pending = dict(actor_obs=actor_obs, critic_obs=critic_obs, actions=actions,
                             log_probs=dist_.log_prob(actions).sum(-1), values=self.model.value(critic_obs),
                             means=dist_.mean, stds=dist_.stddev)
        return actions

    @torch.no_grad()
    def record(self, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
               final_critic_obs: torch.Tensor) -> None:
        """Store the outcome of the last :meth:`act`. final_critic_obs float[N, Q] is the critic
        observation before any automatic reset (used to bootstrap time-outs)."""
        if truncated.any():
            rewards = bootstrap_time_outs(rewards, truncated, self.model.value(final_critic_obs), self.cfg.gamma)
        self.buffer.add(rewards=rewards, dones=terminated | truncated, **self._pending)

    @torch.no_grad()
    def finish_rollout(self, last_critic_obs: torch.Tensor,
                       shape_advantages: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Advantages and returns of the rollout. ``shape_advantages`` maps the advantages
        float[T, N] before their normalisation (e.g. a constraint's Lagrangian); the value
        targets stay the reward's returns."""
        b = self.buffer
        b.advantages, b.returns = gae(b.rewards, b.values, b.dones, self.model.value(last_critic_obs),
                                      self.cfg.gamma, self.cfg.lam)
        if shape_advantages is not None:
            b.advantages = shape_advantages(b.advantages)
        adv = b.advantages
        if _distributed():
            stats = torch.stack([adv.sum(), (adv * adv).sum(), torch.tensor(float(adv.numel()), device=adv.device)])
            dist.all_reduce(stats)
            mean = stats[0] / stats[2]
            std = (stats[1] / stats[2] - mean**2).clamp_min(0).sqrt()
        else:
            mean, std = adv.mean(), adv.std()
        b.advantages = (adv - mean) / (std + 1e-8)

    def update(self) -> UpdateStats:
        cfg = self.cfg
        totals = {"surrogate": 0.0, "value": 0.0, "entropy": 0.0, "kl": 0.0}
        count = 0
        for _ in range(cfg.num_epochs):
            for batch in self.buffer.minibatches(cfg.num_minibatches, self.generator):
                dist_ = self.model.distribution(batch["actor_obs"])
                log_probs = dist_.log_prob(batch["actions"]).sum(-1)
                entropy = dist_.entropy().sum(-1).mean()
                values = self.model.value(batch["critic_obs"])

                with torch.no_grad():
                    kl = gaussian_kl(batch["means"], batch["stds"], dist_.mean, dist_.stddev)
                    if _distributed():
                        dist.all_reduce(kl)
                        kl /= dist.get_world_size()
                if cfg.schedule == "adaptive":
                    self.lr = adapt_lr(self.lr, float(kl), cfg)
                    for group in self.optimizer.param_groups:
                        group["lr"] = self.lr

                surrogate = surrogate_loss(log_probs, batch["log_probs"], batch["advantages"], cfg.clip)
                v_loss = value_loss(values, batch["values"], batch["returns"], cfg.clip if cfg.clip_value else None)
                loss = surrogate + cfg.value_coef * v_loss - cfg.entropy_coef * entropy

                self.optimizer.zero_grad(set_to_none=False)
                loss.backward()
                if _distributed():
                    self._average_gradients()
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()

                totals["surrogate"] += surrogate.item()
                totals["value"] += v_loss.item()
                totals["entropy"] += entropy.item()
                totals["kl"] += float(kl)
                count += 1
        self.buffer.clear()
        means = {k: v / count for k, v in totals.items()}
        return UpdateStats(lr=self.lr, action_std=self.model.log_std.detach().exp().mean().item(), **means)

    def _average_gradients(self) -> None:
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
