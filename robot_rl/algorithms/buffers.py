"""Storage for on-policy rollouts."""

from __future__ import annotations

from collections.abc import Iterator

import torch


class RolloutBuffer:
    """T steps of N worlds. Fields are float[T, N, ...] tensors filled with :meth:`add`."""

    FIELDS = ("actions", "log_probs", "values", "rewards", "dones", "means", "stds")

    def __init__(self, num_steps: int, num_envs: int, actor_dim: int, critic_dim: int, action_dim: int,
                 device: torch.device) -> None:
        t, n = num_steps, num_envs
        self.num_steps, self.num_envs = t, n
        self.actor_obs = torch.zeros(t, n, actor_dim, device=device)
        self.critic_obs = torch.zeros(t, n, critic_dim, device=device)
        self.actions = torch.zeros(t, n, action_dim, device=device)
        self.means = torch.zeros(t, n, action_dim, device=device)
        self.stds = torch.zeros(t, n, action_dim, device=device)
        self.log_probs = torch.zeros(t, n, device=device)
        self.values = torch.zeros(t, n, device=device)
        self.rewards = torch.zeros(t, n, device=device)
        self.dones = torch.zeros(t, n, dtype=torch.bool, device=device)
        self.advantages = torch.zeros(t, n, device=device)
        self.returns = torch.zeros(t, n, device=device)
        self.step = 0

    def add(self, **fields: torch.Tensor) -> None:
        """Store one step: actor_obs, critic_obs and every name in FIELDS, each [N, ...]."""
        if self.step >= self.num_steps:
            raise RuntimeError("rollout buffer is full; call clear() after the update")
        for name, value in fields.items():
            getattr(self, name)[self.step] = value
        self.step += 1

    def clear(self) -> None:
        self.step = 0

    def minibatches(self, num_minibatches: int, generator: torch.Generator | None = None) -> Iterator[dict]:
        """Random disjoint mini-batches over all T·N samples, each a dict of flat tensors."""
        total = self.num_steps * self.num_envs
        size = total // num_minibatches
        order = torch.randperm(total, generator=generator, device="cpu").to(self.actions.device)
        flat = {name: getattr(self, name).flatten(0, 1) for name in
                ("actor_obs", "critic_obs", "actions", "log_probs", "values", "advantages", "returns", "means", "stds")}
        for i in range(num_minibatches):
            idx = order[i * size:(i + 1) * size]
            yield {name: value[idx] for name, value in flat.items()}
