"""Replay buffers for off-policy and offline RL, symmetric demo/online sampling (RLPD), and the
networks those algorithms share.

    buffer = ReplayBuffer(obs_dim=42, action_dim=8, capacity=100_000)
    buffer.add(obs, action, reward, next_obs, done)                # float[B, P], float[B, A], float[B], ...
    batch = buffer.sample(256, generator)                          # Batch of float[256, ...] tensors
    nstep = NStepReturns(3, gamma=0.99)                            # n-step transitions of B worlds
    buffer.add(*nstep.push(obs, action, reward, next_obs, done, ended, flags)[:6])
    sampler = SymmetricSampler(demos, online, demo_fraction=0.5)   # RLPD: half of every batch from demos
    add_intervention(sampler, obs, action, reward, next_obs, done) # HIL-SERL: into both buffers
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch
from torch import nn

from robot_rl.algorithms.networks import mlp


@dataclass
class Batch:
    obs: torch.Tensor
    """float32[B, P]"""
    action: torch.Tensor
    """float32[B, A]"""
    reward: torch.Tensor
    """float32[B]"""
    next_obs: torch.Tensor
    """float32[B, P]"""
    done: torch.Tensor
    """float32[B]: 1 where the episode ended in a terminal state (no bootstrapping)."""
    steps: torch.Tensor | None = None
    """float32[B]: environment steps from obs to next_obs (n-step returns); None: one each."""


class ReplayBuffer:
    """A ring buffer of transitions as preallocated tensors."""

    def __init__(self, obs_dim: int, action_dim: int, capacity: int, device: torch.device | str = "cpu") -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be at least 1, got {capacity}")
        self.capacity, self.device = capacity, torch.device(device)
        self.obs = torch.zeros(capacity, obs_dim, device=self.device)
        self.action = torch.zeros(capacity, action_dim, device=self.device)
        self.reward = torch.zeros(capacity, device=self.device)
        self.next_obs = torch.zeros(capacity, obs_dim, device=self.device)
        self.done = torch.zeros(capacity, device=self.device)
        self.steps = torch.ones(capacity, device=self.device)
        self.size, self.position = 0, 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_obs: torch.Tensor,
            done: torch.Tensor, steps: torch.Tensor | None = None) -> None:
        """Append B transitions (oldest are overwritten when full); ``steps`` float[B]: environment
        steps each spans (n-step transitions; default one)."""
        b = obs.shape[0]
        if steps is None:
            steps = torch.ones(b)
        if b > self.capacity:
            obs, action, reward, next_obs, done, steps = (x[-self.capacity:]
                                                          for x in (obs, action, reward, next_obs, done, steps))
            b = self.capacity
        index = (self.position + torch.arange(b)) % self.capacity
        for name, value in (("obs", obs), ("action", action), ("reward", reward), ("next_obs", next_obs),
                            ("done", done), ("steps", steps)):
            getattr(self, name)[index] = value.to(self.device, torch.float32).reshape(getattr(self, name)[index].shape)
        self.position = (self.position + b) % self.capacity
        self.size = min(self.size + b, self.capacity)

    @classmethod
    def from_transitions(cls, t, capacity: int | None = None) -> ReplayBuffer:
        """A buffer holding :class:`robot_rl.data.dataset.Transitions` ``t`` (capacity: its size)."""
        buffer = cls(t.obs.shape[1], t.action.shape[1], capacity or max(1, len(t)))
        buffer.add(t.obs, t.action, t.reward, t.next_obs, t.done.float())
        return buffer

    FIELDS = ("obs", "action", "reward", "next_obs", "done", "steps")

    def state_dict(self) -> dict:
        """The stored transitions (copies: a slice would save the whole preallocated tensor),
        the ring position and the capacity."""
        n = self.size
        return {**{k: getattr(self, k)[:n].clone() for k in self.FIELDS}, "size": n, "position": self.position,
                "capacity": self.capacity}

    def load_state_dict(self, state: dict) -> None:
        """Replace the contents with :meth:`state_dict`'s: in place when the capacity is the same
        (sampling continues exactly), else oldest first (the newest kept when this buffer is smaller)."""
        n, position = int(state["size"]), int(state["position"])
        state = {"steps": torch.ones(n), **state}  # buffers saved before n-step transitions: one step each
        tensors = [state[k] for k in self.FIELDS]
        self.size = self.position = 0
        if int(state["capacity"]) == self.capacity:
            for name, tensor in zip(self.FIELDS, tensors, strict=True):
                getattr(self, name)[:n] = tensor
            self.size, self.position = n, position
        elif n:
            order = torch.roll(torch.arange(n), -position) if n == int(state["capacity"]) else torch.arange(n)
            self.add(*(t[order] for t in tensors))

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = torch.randint(self.size, (batch_size,), generator=generator).to(self.device)
        return Batch(self.obs[index], self.action[index], self.reward[index], self.next_obs[index], self.done[index],
                     self.steps[index])


def concat(a: Batch, b: Batch) -> Batch:
    """Two :meth:`ReplayBuffer.sample` batches as one (buffer batches always carry ``steps``)."""
    return Batch(*(torch.cat([getattr(a, f), getattr(b, f)]) for f in Batch.__dataclass_fields__))


class NStepReturns:
    """Turns the one-step transitions of B parallel worlds into n-step ones, as DQfD (Hester et
    al., 2018) and DrQ-v2 (Yarats et al., 2021) learn from: the transition from s_t carries
    R = Σ_{k<m} γ^k r_{t+k}, the state s_{t+m} and m, where m = n, or fewer when the episode ends
    within n steps (``done`` is then that last step's, else 0). Rewards reach the states n steps
    back in one backup instead of n. With n = 1 every transition passes as it came."""

    def __init__(self, n: int, gamma: float) -> None:
        if n < 1:
            raise ValueError(f"n-step returns need n >= 1, got {n}")
        self.n, self.gamma = n, gamma
        self.window: deque[tuple[torch.Tensor, ...]] = deque(maxlen=n)
        """(obs, action, reward, flag) of the last n steps, newest last."""
        self.run: torch.Tensor | None = None
        """int64[B]: steps of each world's current episode in the window whose n-step
        transitions are not out yet."""

    def push(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_obs: torch.Tensor,
             done: torch.Tensor, ended: torch.Tensor, flag: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """One step of every world (``ended`` bool[B]: its episode ended here, terminal or cut
        by the time limit; ``flag`` bool[B] rides along, e.g. interventions). Returns the
        transitions this step completes: (obs, action, reward, next_obs, done, steps, flag)."""
        b = len(obs)
        flag = torch.zeros(b, dtype=torch.bool) if flag is None else flag.bool()
        if self.run is None or len(self.run) != b:
            self.window.clear()
            self.run = torch.zeros(b, dtype=torch.long)
        self.window.append((obs, action, reward.float(), flag))
        self.run = (self.run + 1).clamp_max(self.n)
        ended = ended.bool() | done.bool()
        full = ~ended & (self.run == self.n)
        out: list[tuple[torch.Tensor, ...]] = []
        ret = torch.zeros(b)
        for j in range(len(self.window)):  # the transition from j steps back
            o, a, r, f = self.window[-1 - j]
            ret = r + self.gamma * ret
            emit = (ended & (j < self.run)) | (full & (j == self.n - 1))
            if bool(emit.any()):
                out.append((o[emit], a[emit], ret[emit], next_obs[emit], done[emit].float(),
                            torch.full((int(emit.sum()),), float(j + 1)), f[emit]))
        self.run[ended] = 0
        self.run[full] = self.n - 1
        if not out:
            return (obs[:0], action[:0], reward[:0].float(), next_obs[:0], done[:0].float(), torch.zeros(0),
                    flag[:0])
        return tuple(torch.cat(parts) for parts in zip(*out, strict=True))


class SymmetricSampler:
    """RLPD's symmetric sampling (Ball et al.): each batch takes ``demo_fraction`` of its
    transitions from the demo buffer and the rest from the online buffer (all online while the
    demo buffer is empty, all demos while the online one is)."""

    def __init__(self, demos: ReplayBuffer, online: ReplayBuffer, demo_fraction: float = 0.5) -> None:
        if not 0.0 <= demo_fraction <= 1.0:
            raise ValueError(f"demo_fraction must be in [0, 1], got {demo_fraction}")
        self.demos, self.online, self.demo_fraction = demos, online, demo_fraction

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        n_demo = round(batch_size * self.demo_fraction)
        if len(self.demos) == 0:
            n_demo = 0
        elif len(self.online) == 0:
            n_demo = batch_size
        if n_demo == 0:
            return self.online.sample(batch_size, generator)
        if n_demo == batch_size:
            return self.demos.sample(batch_size, generator)
        return concat(self.demos.sample(n_demo, generator), self.online.sample(batch_size - n_demo, generator))


def add_intervention(sampler: SymmetricSampler, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                     next_obs: torch.Tensor, done: torch.Tensor, intervention: torch.Tensor,
                     steps: torch.Tensor | None = None) -> None:
    """Store B online transitions: all go to the online buffer, and those where bool[B]
    ``intervention`` is set (a person's action) also go to the demo buffer (HIL-SERL)."""
    sampler.online.add(obs, action, reward, next_obs, done, steps)
    mask = intervention.bool()
    if bool(mask.any()):
        sampler.demos.add(obs[mask], action[mask], reward[mask], next_obs[mask], done[mask],
                          None if steps is None else steps[mask])


class FixedNorm(nn.Module):
    """(x - mean) / std with statistics fixed from a dataset: float[B, D] -> float[B, D]."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float().clamp_min(1e-3))

    @classmethod
    def of(cls, x: torch.Tensor) -> FixedNorm:
        return cls(x.mean(0), x.std(0) if len(x) > 1 else torch.ones(x.shape[1]))

    @classmethod
    def identity(cls, dim: int) -> FixedNorm:
        return cls(torch.zeros(dim), torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class DeterministicActor(nn.Module):
    """obs float[B, P] -> action float[B, A] in (-1, 1). ``actor_norm`` and ``actor`` are what
    :class:`robot_rl.training.export.DeployedPolicy` exports."""

    def __init__(self, norm: FixedNorm, obs_dim: int, action_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.actor_norm = norm
        self.actor = nn.Sequential(mlp(obs_dim, hidden, action_dim, "relu"), nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.actor_norm(obs))


class GaussianActor(DeterministicActor):
    """A tanh-mean Gaussian with a learned state-independent std (IQL's policy); the mean is the
    deterministic action."""

    def __init__(self, norm: FixedNorm, obs_dim: int, action_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__(norm, obs_dim, action_dim, hidden)
        self.log_std = nn.Parameter(torch.zeros(action_dim))

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """float32[B]: log-density of action float[B, A]."""
        dist = torch.distributions.Normal(self(obs), self.log_std.clamp(-5.0, 2.0).exp())
        return dist.log_prob(action).sum(-1)


class Critic(nn.Module):
    """An ensemble of E Q-functions: (obs float[B, P], action float[B, A]) -> float[E, B].
    ``layer_norm`` puts LayerNorm after every hidden layer (RLPD)."""

    def __init__(self, norm: FixedNorm, obs_dim: int, action_dim: int, hidden: tuple[int, ...], ensemble: int = 2,
                 layer_norm: bool = False) -> None:
        super().__init__()
        self.norm = norm
        self.nets = nn.ModuleList(self._net(obs_dim + action_dim, hidden, layer_norm) for _ in range(ensemble))

    @staticmethod
    def _net(in_dim: int, hidden: tuple[int, ...], layer_norm: bool) -> nn.Sequential:
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width)] + ([nn.LayerNorm(width)] if layer_norm else []) + [nn.ReLU()]
            in_dim = width
        layers.append(nn.Linear(in_dim, 1))
        return nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, members: list[int] | None = None) -> torch.Tensor:
        """float[E, B], or float[len(members), B] for only those members (the others are not run)."""
        x = torch.cat([self.norm(obs), action], dim=-1)
        nets = self.nets if members is None else [self.nets[i] for i in members]
        return torch.stack([net(x).squeeze(-1) for net in nets])


class ValueNet(nn.Module):
    """obs float[B, P] -> float[B]."""

    def __init__(self, norm: FixedNorm, obs_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.norm = norm
        self.net = mlp(obs_dim, hidden, 1, "relu")

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(obs)).squeeze(-1)


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau source (Polyak averaging)."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)
