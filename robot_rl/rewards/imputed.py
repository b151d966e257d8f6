"""Rewards imputed from a few labelled frames (*Offline RL with Imputed Rewards*: a reward model
regressed on 1% of the transitions labels the rest of an offline dataset for IQL).

    reward = REWARDS.get("imputed")(inputs="state", state_dim=42)
    stats = reward.fit(states, values)          # float32[N, D] (or images uint8[N, V, H, W, 3]), float32[N]
    out = reward.score(None, states, goal)      # out.reward float32[B]: the ensemble's mean prediction

An ensemble of small regressors (state MLPs, or CNNs for camera frames) fitted by mean squared
error to whatever per-frame value the labeller gave (the task's reward, true progress, a
person's score). Unlike preference labels, values keep their magnitudes: IQL's advantages, and
so its policy, depend on how much better one state is than another, not only on their order.
A seeded share of the labelled frames is held out; each member keeps its weights from the
epoch of lowest held-out error and training stops ``patience`` epochs after it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from robot_rl.rewards.base import REWARDS, RewardOutput, check_images, read_checkpoint
from robot_rl.rewards.cnn import SmallCNN, to_float
from robot_rl.rewards.preference import RewardMLP
from robot_rl.utils.files import write_checked

CHECKPOINT_FORMAT = "robot_rl.imputed_reward.v1"


@dataclass(frozen=True)
class ImputedConfig:
    inputs: Literal["images", "state"] = "state"
    """What the regressors read: state vectors float[D] (MLPs) or camera images (CNNs)."""
    state_dim: int = 0
    """D of the state vectors when ``inputs`` is ``state``."""
    hidden: int = 64
    """Width of the hidden layers (MLP) or of the CNN's output features."""
    ensemble_size: int = 3
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    """L2 penalty (Adam): with a few hundred labelled panda_push states, 1e-2 lifted the held-out
    Pearson correlation with the task reward from 0.87 (1e-4) to 0.93."""
    batch_size: int = 64
    max_epochs: int = 500
    """Most passes over the labelled frames."""
    validation_fraction: float = 0.1
    """Share of the labelled frames held out to pick the epoch (0: keep the last epoch)."""
    patience: int = 20
    """Epochs without a lower held-out error before training stops."""
    seed: int = 0
    """Seeds initialisation, the held-out split and the batch order (the global RNG is left alone)."""
    checkpoint: str | None = None
    """A file written by ``save``: its config and weights are loaded (``options`` still apply)."""


class ImageRegressor(nn.Module):
    """Images uint8[B, V, H, W, 3] -> float32[B]: a :class:`SmallCNN` per view, features averaged
    over views, then a linear layer."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.encoder = SmallCNN(out_dim=hidden)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, v = images.shape[:2]
        features = self.encoder.forward_float(to_float(images.reshape(b * v, *images.shape[2:])))
        return self.head(features.reshape(b, v, -1).mean(1)).squeeze(-1)


@REWARDS.register("imputed")
class ImputedReward:
    """Regressed per-frame reward; see the module docstring."""

    def __init__(self, config: ImputedConfig | None = None, **options: object) -> None:
        checkpoint = options.get("checkpoint", config.checkpoint if config else None)
        state = None
        if checkpoint:
            state = read_checkpoint(checkpoint, CHECKPOINT_FORMAT, "an imputed-reward")
            config = ImputedConfig(**state["config"])
        config = dataclasses.replace(config or ImputedConfig(), **options)
        if config.inputs not in ("images", "state"):
            raise ValueError(f"imputed: inputs must be 'images' or 'state', got {config.inputs!r}")
        if config.inputs == "state" and config.state_dim < 1:
            raise ValueError("imputed: inputs 'state' needs state_dim, the size of the state vectors "
                             "(`robot-rl tasks` lists each task's sizes)")
        self.config = config
        self.uses_state = config.inputs == "state"
        self.uses_images = not self.uses_state
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.ensemble = nn.ModuleList(
                RewardMLP(config.state_dim, config.hidden) if self.uses_state else ImageRegressor(config.hidden)
                for _ in range(config.ensemble_size))
        if state is not None:
            self.ensemble.load_state_dict(state["state_dict"])
        self.ensemble.eval()

    def fit(self, inputs: torch.Tensor, values: torch.Tensor) -> dict[str, float]:
        """Fit every member to values float[N] of the labelled inputs (states float32[N, D] or
        images uint8[N, V, H, W, 3]). Returns epochs, train and held-out mean squared error."""
        cfg = self.config
        inputs = self._check(inputs)
        values = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
        if len(values) != len(inputs) or len(values) < 2:
            raise ValueError(f"imputed: fit needs at least two labelled frames and one value each; got "
                             f"{len(inputs)} frames and {len(values)} values")
        if not bool(torch.isfinite(values).all()):
            raise ValueError("imputed: the labelled values contain NaN or infinity")
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        order = torch.randperm(len(values), generator=gen)
        held_size = min(len(values) - 1, int(cfg.validation_fraction * len(values)))
        held, train = order[:held_size], order[held_size:]
        if self.uses_state:
            for net in self.ensemble:
                net.input_set.fill_(False)
                net.set_input_statistics(inputs[train])
        optimizer = torch.optim.Adam(self.ensemble.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        best = [(float("inf"), 0, {k: v.clone() for k, v in net.state_dict().items()}) for net in self.ensemble]
        stats = {"frames": float(len(values)), "epochs": 0.0}
        for epoch in range(cfg.max_epochs):
            self.ensemble.train()
            total = 0.0
            batches = [train[torch.randperm(len(train), generator=gen)] for _ in self.ensemble]
            for start in range(0, len(train), cfg.batch_size):
                rows = [order[start:start + cfg.batch_size] for order in batches]
                loss = sum((net(inputs[r]) - values[r]).pow(2).mean() for net, r in zip(self.ensemble, rows))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(rows[0])
            stats.update(epochs=epoch + 1.0, train_mse=total / len(train) / len(self.ensemble))
            if not held_size:
                continue
            self.ensemble.eval()
            with torch.no_grad():
                errors = [float((net(inputs[held]) - values[held]).pow(2).mean()) for net in self.ensemble]
            for member, (net, error) in enumerate(zip(self.ensemble, errors)):
                if error < best[member][0]:
                    best[member] = (error, epoch + 1, {k: v.clone() for k, v in net.state_dict().items()})
            if epoch + 1 - max(b[1] for b in best) >= cfg.patience:
                break
        if held_size:
            for net, (_, _, weights) in zip(self.ensemble, best):
                net.load_state_dict(weights)
            stats.update(held_out_mse=sum(b[0] for b in best) / len(best),
                         best_epoch=sum(b[1] for b in best) / len(best))
        self.ensemble.eval()
        return stats

    @torch.no_grad()
    def score(self, images: torch.Tensor | None, state: torch.Tensor | None = None, goal: str = "") -> RewardOutput:
        """Ensemble-mean predicted value float32[B] of ``state`` float32[B, D] (or of images
        uint8[B, V, H, W, 3]); ``goal`` is ignored."""
        if self.uses_state:
            if state is None:
                raise ValueError("imputed: this model reads states (inputs: state) but got none")
            x = self._check(state)
        else:
            x = self._check(check_images(images, "imputed"))
        return RewardOutput(reward=torch.stack([net(x) for net in self.ensemble]).mean(0))

    def save(self, path: str | Path) -> None:
        write_checked(Path(path), {"format": CHECKPOINT_FORMAT, "config": dataclasses.asdict(self.config),
                                   "state_dict": self.ensemble.state_dict()})

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if self.uses_state:
            x = torch.as_tensor(x, dtype=torch.float32)
            if x.ndim != 2 or x.shape[1] != self.config.state_dim:
                raise ValueError(f"imputed: expected states float[B, {self.config.state_dim}], got {tuple(x.shape)}")
            return x
        if x.dtype != torch.uint8 or x.ndim != 5:
            raise ValueError(f"imputed: expected images uint8[B, V, H, W, 3], got {x.dtype} {tuple(x.shape)}")
        return x
