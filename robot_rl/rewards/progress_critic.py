"""A VLAC-style pairwise progress critic, small enough to train on a CPU.

    critic = REWARDS.get("progress_critic")(done_threshold=0.9)
    critic.fit(episodes, progress)             # uint8[T_i, V, H, W, 3] each; float[T_i] each, or None
    critic.delta(a, b)                         # float32[B] in [-1, 1]: progress of b minus that of a
    critic.episode_values(frames)              # float32[T]: VLAC values along one episode
    out = critic.score(images, None, goal)     # reward = progress = value, done = value >= 0.9

**The pair critic.** A small CNN g maps an image to a progress potential in (0, 1) (sigmoid
output; views averaged), and the critic of a pair is f(a, b) = g(b) − g(a) ∈ (−1, 1):
antisymmetric by construction (f(a, b) = −f(b, a), f(a, a) = 0) and transitive
(f(a, c) = f(a, b) + f(b, c)). It is trained on pairs of frames of the same episode with
the squared error of f against the progress delta p_b − p_a, where p is ground-truth progress
(rollouts) or the time index t/(T−1) (demos), plus ``anchor_weight`` times the squared
error of g itself against p, which pins the otherwise free offset of g.

**Values (VLAC).** VLAC's critic answers a relative delta c ∈ [−1, 1] — the fraction of the
remaining progress gained (c > 0) or of the progress made lost (c < 0) — and accumulates
V₀ = 0; c > 0: V ← V + (1 − V)·c; c < 0: V ← V + V·c  (:func:`vlac_values`). Our critic's
absolute delta d = g(b) − g(a) is turned into that relative form with the potential of the
first frame, c = d / (1 − g(a)) for d ≥ 0 and c = d / g(a) for d < 0 (VLAC's own in-context
mode converts the other way, scaling c by 1 − V), so accumulating consecutive critics with
the VLAC rule tracks the potential, stays in [0, 1] and starts at 0 whatever the first frame.
Accumulating the absolute deltas directly would saturate: along an expert episode of many
small steps, V = 1 − Π(1 − d_t) ≈ 1 − e^{−1} < 0.9, and ``done`` would never fire.

**score** compares each image with a zero-progress reference, one VLAC step from V₀ = 0, so
reward = progress = g(image), done = g(image) >= ``done_threshold``. :meth:`episode_values`
gives the accumulated values along an episode; :mod:`robot_rl.rewards.metrics` evaluates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from robot_rl.rewards.base import REWARDS, RewardOutput, check_episodes, check_images
from robot_rl.rewards.cnn import SmallCNN, random_shift, to_float
from robot_rl.utils.files import read_checked, write_checked


def vlac_values(critics: torch.Tensor) -> torch.Tensor:
    """VLAC's value rule over float[..., T−1] consecutive critics c ∈ [−1, 1]:
    V₀ = 0; c > 0: V ← V + (1 − V)·c; c < 0: V ← V + V·c. Returns float[..., T] (V₀ first)."""
    values = [torch.zeros_like(critics[..., 0])]
    for c in critics.unbind(-1):
        v = values[-1]
        values.append(torch.where(c > 0, v + (1.0 - v) * c, v + v * c))
    return torch.stack(values, dim=-1)


def relative_critic(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """VLAC's relative delta between progress values float[B] in [0, 1]: the fraction of the
    remaining progress gained, or of the progress made lost; float[B] in [−1, 1]."""
    d = after - before
    gained = d / (1.0 - before).clamp_min(1e-6)
    lost = d / before.clamp_min(1e-6)
    return torch.where(d >= 0, gained, lost).clamp(-1.0, 1.0)


@REWARDS.register("progress_critic")
class ProgressCritic:
    """Pairwise progress critic with VLAC values (see the module docstring).

    Args:
        done_threshold: ``done`` when the value reaches this.
        steps: gradient steps of :meth:`fit`.
        batch_size: frame pairs per step.
        lr: Adam learning rate.
        anchor_weight: weight of the potential's own error against progress.
        shift: random-shift augmentation in pixels.
        width: channels of the CNN.
        seed: seeds the CNN's initialisation and the pair sampling.
    """

    uses_images = True
    uses_state = False

    def __init__(self, done_threshold: float = 0.9, steps: int = 300, batch_size: int = 32, lr: float = 1e-3,
                 anchor_weight: float = 0.1, shift: int = 4, width: int = 16, seed: int = 0) -> None:
        self.options = {"done_threshold": done_threshold, "steps": steps, "batch_size": batch_size, "lr": lr,
                        "anchor_weight": anchor_weight, "shift": shift, "width": width, "seed": seed}
        self.done_threshold = done_threshold
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.net = SmallCNN(out_dim=1, width=width)
        self.net.eval()
        self.train_losses: list[float] = []

    # -- the pair critic -------------------------------------------------------------------------

    def _potential_float(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net.forward_float(x)[:, 0])

    @torch.no_grad()
    def potential(self, images: torch.Tensor) -> torch.Tensor:
        """uint8[B, V, H, W, 3] -> float32[B] in (0, 1): g, averaged over views."""
        b, v = images.shape[:2]
        return self._potential_float(to_float(images.flatten(0, 1).cpu())).view(b, v).mean(1)

    def delta(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Absolute progress delta f(a, b) = g(b) − g(a), float32[B] in (−1, 1), for
        uint8[B, V, H, W, 3] each."""
        return self.potential(check_images(b, "progress_critic")) - self.potential(check_images(a, "progress_critic"))

    def critic(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """VLAC's relative critic of the pair (see :func:`relative_critic`), float32[B] in [−1, 1]."""
        return relative_critic(self.potential(check_images(a, "progress_critic")),
                               self.potential(check_images(b, "progress_critic")))

    def episode_values(self, frames: torch.Tensor, stride: int = 1) -> torch.Tensor:
        """Values float32[T'] of one episode uint8[T, V, H, W, 3] (or [T, H, W, 3]): VLAC's rule
        over the critics of frames (0, s), (s, 2s), ... with s = ``stride``; T' = ceil(T / s)."""
        frames = check_episodes([frames], "progress_critic")[0][::stride]
        g = self.potential(frames)
        return vlac_values(relative_critic(g[:-1], g[1:])) if len(g) > 1 else torch.zeros(1)

    # -- training --------------------------------------------------------------------------------

    def fit(self, episodes: Sequence[torch.Tensor], progress: Sequence[Any] | None = None) -> ProgressCritic:
        """Train on episodes uint8[T_i, V, H, W, 3] (or [T_i, H, W, 3]) with ground-truth progress
        float[T_i] each, or the time index t/(T_i − 1) when ``progress`` is None."""
        episodes = check_episodes(episodes, "progress_critic")
        if progress is None:
            progress = [torch.arange(len(e)) / max(len(e) - 1, 1) for e in episodes]
        labels = [torch.as_tensor(p, dtype=torch.float32).reshape(-1) for p in progress]
        for e, p in zip(episodes, labels):
            if len(p) != len(e):
                raise ValueError(f"progress_critic: an episode of {len(e)} frames has {len(p)} progress values")
        # Every view of every episode is a sequence of its own (views share the episode's progress).
        seqs = [e[:, v] for e in episodes for v in range(e.shape[1])]
        targets = [p for e, p in zip(episodes, labels) for _ in range(e.shape[1])]
        lengths = torch.tensor([len(s) for s in seqs])
        frames, prog = torch.cat(seqs), torch.cat(targets)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
        o = self.options
        gen = torch.Generator().manual_seed(o["seed"])
        opt = torch.optim.Adam(self.net.parameters(), lr=o["lr"])
        self.net.train()
        self.train_losses = []
        n = o["batch_size"]
        for _ in range(o["steps"]):
            ep = torch.randint(len(seqs), (n,), generator=gen)
            i = offsets[ep] + (torch.rand(n, generator=gen) * lengths[ep]).long()
            j = offsets[ep] + (torch.rand(n, generator=gen) * lengths[ep]).long()
            g = self._potential_float(random_shift(to_float(frames[torch.cat([i, j])]), o["shift"], gen))
            gi, gj = g.split(n)
            loss = F.mse_loss(gj - gi, prog[j] - prog[i])
            loss = loss + o["anchor_weight"] * F.mse_loss(g, prog[torch.cat([i, j])])
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.train_losses.append(loss.item())
        self.net.eval()
        return self

    # -- RewardModule ----------------------------------------------------------------------------

    @torch.no_grad()
    def score(self, images: torch.Tensor | None, state: torch.Tensor | None, goal: str) -> RewardOutput:
        """images uint8[B, V, H, W, 3] -> reward = progress = g(images) float32[B] (one VLAC step
        from a zero-progress reference), done = value >= ``done_threshold`` bool[B]."""
        images = check_images(images, "progress_critic")
        value = self.potential(images).to(images.device)
        return RewardOutput(reward=value, progress=value, done=value >= self.done_threshold)

    @torch.no_grad()
    def score_pairs(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> torch.Tensor:
        """float32[B]: (1 + f(a, b)) / 2, read as the probability that b is closer to the goal."""
        return 0.5 * (1.0 + self.delta(a, b)).to(b.device)

    # -- persistence -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        write_checked(Path(path), {"options": self.options, "net": self.net.state_dict()})

    @classmethod
    def load(cls, path: str | Path) -> ProgressCritic:
        state = read_checked(Path(path), None, "progress critic")
        critic = cls(**state["options"])
        critic.net.load_state_dict(state["net"])
        critic.net.eval()
        return critic
