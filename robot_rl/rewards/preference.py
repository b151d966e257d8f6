"""A reward learned from pairwise preferences over images (RL-VLM-F, PEBBLE).

    reward = PreferenceReward(ensemble_size=3)                 # or REWARDS.get("preference")(...)
    pick = reward.select_queries(pool_a, pool_b, 50, "disagreement")
    labels = labeller.label(pool_a[pick], pool_b[pick], goal)  # 0 / 0.5 / 1 / NaN
    reward.add_labels(pool_a[pick], pool_b[pick], labels)      # NaN pairs are dropped
    reward.update()                                            # until 97% train accuracy or max_epochs
    reward.score(images, None, goal).reward                    # float32[B]: ensemble mean
    buffer_rewards = reward.relabel(buffer_images)             # float32[N], after every update

An ensemble of small CNNs r̂ maps an observation uint8[V, H, W, 3] (views stacked on channels)
to a scalar and is trained with the Bradley–Terry loss CE(softmax([r̂(a), r̂(b)]), [1 - y, y]),
y = 1 when b is preferred, 0.5 for ties. Each member sees the labelled pairs in its own order
from its own initialisation; their disagreement picks informative queries. The goal text is
not an input: one model learns the goal its labels were collected for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.rewards.base import REWARDS, RewardOutput, check_images, read_checkpoint
from robot_rl.rewards.labellers.base import Labeller
from robot_rl.utils.files import write_checked

CHECKPOINT_FORMAT = "robot_rl.preference.v1"
ARCHITECTURE = ("ensemble_size", "inputs", "state_dim", "views", "channels", "strides", "pooling", "hidden")
"""Config fields fixed by saved weights: a checkpoint's values override the caller's."""


@dataclass(frozen=True)
class PreferenceConfig:
    """The ensemble and how it is trained."""

    ensemble_size: int = 3
    """Reward networks; their spread over P(b better) drives disagreement sampling."""
    inputs: Literal["images", "state"] = "images"
    """What the reward networks read: camera images (CNNs), or state vectors float[D] (MLPs).
    Either way the labeller may judge images: RL-VLM-F learns state-input rewards from VLM
    labels on rendered image pairs for its state-based tasks."""
    state_dim: int = 0
    """D of the state vectors when ``inputs`` is ``state`` (``robot-rl tasks`` lists each task's sizes)."""
    views: int = 1
    """Camera views per observation (V in uint8[B, V, H, W, 3])."""
    channels: tuple[int, ...] = (8, 16, 16)
    """Output channels of each 3x3 convolution."""
    strides: tuple[int, ...] = (2, 2, 1)
    """Stride of each convolution."""
    pooling: Literal["keypoints", "average"] = "keypoints"
    """``keypoints``: spatial softmax (where each feature is; suits reaching and placing);
    ``average``: 4x4 average pool."""
    hidden: int = 64
    """Width of the hidden layer after the convolutions."""
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    """Pairs per gradient step (each member draws its own)."""
    max_epochs: int = 50
    """Most passes over the labelled pairs in one ``update``."""
    stop_accuracy: float = 0.97
    """``update`` stops after the epoch whose train accuracy (mean over members, ties excluded) reaches this."""
    validation_fraction: float = 0.0
    """Share of the labelled pairs held out of training; when above 0, ``update`` keeps the
    ensemble of the epoch with the lowest held-out loss and stops ``patience`` epochs after it.
    With noisy labels (a judge that errs on a tenth of the pairs) the train accuracy never reaches
    ``stop_accuracy`` and later epochs learn the mistakes: on panda_push states with 10% flipped
    labels, held-out Pearson with the true reward fell from 0.80 after 10 epochs to 0.68 after 50."""
    patience: int = 5
    """Epochs without a lower held-out loss before ``update`` stops (with ``validation_fraction``)."""
    shift: int = 4
    """Training augmentation: each image is shifted by up to this many pixels (edge padding,
    random crop, as in DrQ), the same shift for both images of a pair; 0 turns it off. On
    rendered panda_reach episodes it lifted held-out Spearman from about 0.8 to 0.9."""
    normalize: bool = False
    """``score`` returns (r - mean) / std, with mean and std over the labelled images at the last update."""
    score_batch_size: int = 256
    """Observations per forward pass when scoring."""
    seed: int = 0
    """Seeds initialisation and the order of training pairs (the global RNG is left alone)."""
    device: str = "cpu"
    checkpoint: str | None = None
    """A file written by ``save``: its weights are loaded and its architecture fields used."""


class SpatialSoftmax(nn.Module):
    """Feature maps float32[B, C, H, W] -> expected (y, x) of each channel's softmax over
    positions, in [-1, 1]: float32[B, 2C]. Keeps where things are, which pooling loses."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = torch.softmax(x.flatten(2), dim=-1).view(b, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device)
        return torch.cat([(p.sum(3) * ys).sum(2), (p.sum(2) * xs).sum(2)], dim=1)


class RewardMLP(nn.Module):
    """State float32[B, D] -> reward float32[B]: the state standardised (statistics fixed from
    the first labelled states, see :meth:`set_input_statistics`), then two hidden layers."""

    def __init__(self, state_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(), nn.Linear(hidden, 1))
        self.register_buffer("input_mean", torch.zeros(state_dim))
        self.register_buffer("input_std", torch.ones(state_dim))
        self.register_buffer("input_set", torch.zeros((), dtype=torch.bool))

    def set_input_statistics(self, states: torch.Tensor, min_std: float = 1e-2) -> None:
        """Standardise inputs by the mean and standard deviation of states float32[B, D] (each
        standard deviation at least ``min_std``, so constant entries stay near 0); once only."""
        if bool(self.input_set) or len(states) < 2:
            return
        self.input_mean.copy_(states.mean(0))
        self.input_std.copy_(states.std(0).clamp_min(min_std))
        self.input_set.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.input_mean) / self.input_std).squeeze(-1)


class RewardCNN(nn.Module):
    """Observation float32[B, 3V, H, W] -> reward float32[B], for any H, W.

    3x3 convolutions (``channels``, ``strides``), then either keypoints (spatial softmax: the
    expected position of each final channel) or a 4x4 average pool, then an MLP.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], strides: tuple[int, ...], hidden: int,
                 pooling: Literal["keypoints", "average"] = "keypoints") -> None:
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError(f"RewardCNN: {len(channels)} channels but {len(strides)} strides")
        layers: list[nn.Module] = []
        for i, (width, stride) in enumerate(zip(channels, strides)):
            layers.append(nn.Conv2d(in_channels, width, 3, stride=stride, padding=1))
            if i < len(channels) - 1 or pooling == "average":
                layers.append(nn.LeakyReLU())
            in_channels = width
        if pooling == "keypoints":
            layers.append(SpatialSoftmax())
            features = 2 * in_channels
        elif pooling == "average":
            layers += [nn.AdaptiveAvgPool2d(4), nn.Flatten()]
            features = 16 * in_channels
        else:
            raise ValueError(f"RewardCNN: unknown pooling {pooling!r}; use 'keypoints' or 'average'")
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(features, hidden), nn.LeakyReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)


def random_shift(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift images float32[2B, C, H, W] (a pair's two images in rows i and B + i) by up to
    ``pad`` pixels: replicate-pad, then crop at a random offset shared by both images of a pair."""
    n, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (n // 2, 2), generator=generator).repeat(2, 1).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    rows = (offsets[:, :1] + torch.arange(h, device=x.device))[:, None, :, None]  # [2B, 1, H, 1]
    cols = (offsets[:, 1:] + torch.arange(w, device=x.device))[:, None, None, :]  # [2B, 1, 1, W]
    index = torch.arange(n, device=x.device)[:, None, None, None]
    channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[index, channels, rows, cols]


def bradley_terry_loss(reward_a: torch.Tensor, reward_b: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE(softmax([r_a, r_b]), [1 - y, y]) over pairs: rewards and labels float32[B], y in [0, 1]."""
    log_p = F.log_softmax(torch.stack([reward_a, reward_b], dim=-1), dim=-1)
    target = torch.stack([1.0 - labels, labels], dim=-1)
    return -(target * log_p).sum(-1).mean()


def sample_pairs(num_items: int, num_pairs: int, generator: torch.Generator | None = None,
                 groups: torch.Tensor | None = None) -> torch.Tensor:
    """int64[num_pairs, 2] indices of two different items out of ``num_items``, uniformly; with
    ``groups`` int64[num_items] (e.g. episode ids), both items of a pair share a group."""
    if groups is None:
        first = torch.randint(num_items, (num_pairs,), generator=generator)
        second = (first + torch.randint(1, num_items, (num_pairs,), generator=generator)) % num_items
        return torch.stack([first, second], dim=1)
    first = torch.randint(num_items, (num_pairs,), generator=generator)
    # Items sorted by group; the partner is drawn by its rank within the first item's group.
    order = torch.argsort(groups, stable=True)
    position = torch.empty_like(order)
    position[order] = torch.arange(num_items)
    _, group_of, counts = torch.unique(groups, return_inverse=True, return_counts=True)
    start, size = (torch.cumsum(counts, 0) - counts)[group_of[first]], counts[group_of[first]]
    if bool((size < 2).any()):
        raise ValueError("sample_pairs: a group with a single item cannot form a pair")
    rank = (torch.rand(num_pairs, generator=generator) * (size - 1)).long()
    rank = rank + (rank >= position[first] - start).long()  # skip the first item itself
    return torch.stack([first, order[start + rank]], dim=1)


@REWARDS.register("preference")
class PreferenceReward:
    """Ensemble reward model trained on preference labels; implements ``PairwiseRewardModule``."""

    uses_images = True
    uses_state = False

    def __init__(self, config: PreferenceConfig | None = None, **options: object) -> None:
        """``options`` replace fields of ``config`` (default :class:`PreferenceConfig`). With a
        ``checkpoint``, the saved config is the base instead (unless ``config`` is given),
        ``options`` still replace its fields, and the architecture always comes from the file."""
        checkpoint = options.get("checkpoint", config.checkpoint if config else None)
        state = None
        if checkpoint:
            state = read_checkpoint(checkpoint, CHECKPOINT_FORMAT, "a preference-reward")
            saved = dict(state["config"], channels=tuple(state["config"]["channels"]),
                         strides=tuple(state["config"]["strides"]))
            config = dataclasses.replace(config or PreferenceConfig(**saved), **options)
            config = dataclasses.replace(config, **{name: saved[name] for name in ARCHITECTURE if name in saved})
        else:
            config = dataclasses.replace(config or PreferenceConfig(), **options)
        self.config = config
        self.device = torch.device(config.device)
        if config.inputs not in ("images", "state"):
            raise ValueError(f"preference: inputs must be 'images' or 'state', got {config.inputs!r}")
        if config.inputs == "state" and config.state_dim < 1:
            raise ValueError("preference: inputs 'state' needs state_dim, the size of the state vectors "
                             "(e.g. 32 for panda_reach's policy observation; `robot-rl tasks` lists them)")
        self.uses_images, self.uses_state = config.inputs == "images", config.inputs == "state"

        def network() -> nn.Module:
            if self.uses_state:
                return RewardMLP(config.state_dim, config.hidden)
            return RewardCNN(3 * config.views, config.channels, config.strides, config.hidden, config.pooling)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.ensemble = nn.ModuleList(network() for _ in range(config.ensemble_size)).to(self.device)
        self.reward_mean, self.reward_std = 0.0, 1.0
        if state is not None:
            self.ensemble.load_state_dict(state["state_dict"])
            self.reward_mean, self.reward_std = float(state["reward_mean"]), float(state["reward_std"])
        self.optimizer = torch.optim.Adam(self.ensemble.parameters(), lr=config.learning_rate,
                                          weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed + 1)
        shape, dtype = ((0, config.state_dim), torch.float32) if self.uses_state else ((0, config.views, 1, 1, 3),
                                                                                        torch.uint8)
        self.a = torch.zeros(shape, dtype=dtype)
        """uint8[P, V, H, W, 3] (or float32[P, D] states): first observation of each labelled pair (CPU)."""
        self.b = torch.zeros(shape, dtype=dtype)
        self.labels = torch.zeros(0)
        """float32[P] in {0, 0.5, 1}: 1 when b is preferred."""

    # -- labelled data and training ------------------------------------------------------------

    def add_labels(self, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor) -> int:
        """Keep pairs a, b uint8[B, V, H, W, 3] with labels float32[B] for training; NaN labels
        ("no label") are dropped. Returns how many pairs were kept."""
        a, b = self._check(a, "a").cpu(), self._check(b, "b").cpu()
        labels = torch.as_tensor(labels, dtype=torch.float32).cpu()
        if not (len(a) == len(b) == len(labels)):
            raise ValueError(f"add_labels: {len(a)} a, {len(b)} b and {len(labels)} labels")
        keep = ~torch.isnan(labels)
        if bool(((labels[keep] < 0) | (labels[keep] > 1)).any()):
            raise ValueError("add_labels: labels must be in [0, 1] (or NaN for no label)")
        if len(self.labels) == 0:
            self.a, self.b = a[keep], b[keep]
        else:
            self.a, self.b = torch.cat([self.a, a[keep]]), torch.cat([self.b, b[keep]])
        self.labels = torch.cat([self.labels, labels[keep]])
        return int(keep.sum())

    def clear_labels(self) -> None:
        self.a, self.b, self.labels = self.a[:0], self.b[:0], self.labels[:0]

    @torch.enable_grad()  # also when called while scoring under no_grad (online learning)
    def update(self, max_epochs: int | None = None, pairs_per_epoch: int | None = None) -> dict[str, float]:
        """Train every member on the labelled pairs until the train accuracy reaches
        ``stop_accuracy`` or ``max_epochs`` passes. With ``pairs_per_epoch``, each pass visits
        that many labelled pairs drawn at random instead of all of them (a fixed cost per update
        however many labels have accumulated). With ``validation_fraction``, a seeded share of the
        pairs is held out and the members of the best held-out epoch are kept (see the config).
        Returns epochs, last loss and accuracy (and the held-out loss, accuracy and best epoch)."""
        n = len(self.labels)
        stats = {"pairs": float(n), "epochs": 0.0, "loss": float("nan"), "accuracy": float("nan")}
        if n == 0:
            return stats
        config, members = self.config, len(self.ensemble)
        if self.uses_state and not all(bool(net.input_set) for net in self.ensemble):
            states = torch.cat([self.a, self.b]).to(self.device)
            for net in self.ensemble:
                net.set_input_statistics(states)
        held, train = torch.zeros(0, dtype=torch.long), torch.arange(n)
        if config.validation_fraction > 0 and n > 1:
            pairs = torch.randperm(n, generator=self.generator)
            size = min(n - 1, max(1, int(config.validation_fraction * n)))
            held, train = pairs[:size], pairs[size:]
        best: tuple[float, int, dict] | None = None
        self.ensemble.train()
        for epoch in range(max_epochs or config.max_epochs):
            visits = min(len(train), pairs_per_epoch or len(train))
            orders = torch.stack([train[torch.randperm(len(train), generator=self.generator)[:visits]]
                                  for _ in range(members)])
            total_loss, correct, counted = 0.0, 0.0, 0.0
            for start in range(0, visits, config.batch_size):
                loss = torch.zeros((), device=self.device)
                for member, net in enumerate(self.ensemble):
                    index = orders[member, start:start + config.batch_size]
                    pair = self._input(torch.cat([self.a[index], self.b[index]]))
                    shift = config.shift and self.uses_images
                    rewards = net(random_shift(pair, config.shift, self.generator) if shift else pair)
                    reward_a, reward_b = rewards.chunk(2)
                    labels = self.labels[index].to(self.device)
                    loss = loss + bradley_terry_loss(reward_a, reward_b, labels)
                    hard = labels != 0.5
                    correct += float(((reward_b > reward_a).float() == labels)[hard].sum())
                    counted += float(hard.sum())
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total_loss += float(loss.detach()) * len(index) / members
            accuracy = correct / counted if counted else float("nan")  # ties only: train to max_epochs
            stats.update(epochs=float(epoch + 1), loss=total_loss / visits, accuracy=accuracy)
            if len(held):
                held_loss, held_accuracy = self._held_out(held)
                if best is None or held_loss < best[0]:
                    best = (held_loss, epoch + 1, {k: v.clone() for k, v in self.ensemble.state_dict().items()})
                    stats.update(held_out_loss=held_loss, held_out_accuracy=held_accuracy, best_epoch=epoch + 1.0)
                if epoch + 1 - best[1] >= config.patience:
                    break
            if accuracy >= config.stop_accuracy:
                break
        if best is not None:
            self.ensemble.load_state_dict(best[2])
        self.ensemble.eval()
        self._fit_normalisation()
        return stats

    @torch.no_grad()
    def _held_out(self, index: torch.Tensor) -> tuple[float, float]:
        """Bradley-Terry loss and accuracy (ties excluded) of the ensemble's mean reward on the
        labelled pairs ``index``, without augmentation."""
        a = self.member_rewards(self.a[index]).mean(0).to(self.device)
        b = self.member_rewards(self.b[index]).mean(0).to(self.device)
        labels = self.labels[index].to(self.device)
        hard = labels != 0.5
        accuracy = float(((b > a).float() == labels)[hard].float().mean()) if bool(hard.any()) else float("nan")
        return float(bradley_terry_loss(a, b, labels)), accuracy

    def fit(self, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """Train on exactly these pairs (previously added labels are forgotten); see ``update``."""
        self.clear_labels()
        self.add_labels(a, b, labels)
        return self.update()

    def _fit_normalisation(self) -> None:
        rewards = self.member_rewards(torch.cat([self.a, self.b])).mean(0)
        self.reward_mean, self.reward_std = float(rewards.mean()), float(rewards.std().clamp_min(1e-6))

    # -- scoring -------------------------------------------------------------------------------

    @torch.no_grad()
    def member_rewards(self, images: torch.Tensor) -> torch.Tensor:
        """float32[M, B]: every member's reward for observations uint8[B, V, H, W, 3] (or states float32[B, D])."""
        images = self._check(images, "images")
        was_training = self.ensemble.training
        self.ensemble.eval()
        out = []
        for start in range(0, len(images), self.config.score_batch_size):
            x = self._input(images[start:start + self.config.score_batch_size])
            out.append(torch.stack([net(x) for net in self.ensemble]).cpu())
        self.ensemble.train(was_training)
        return torch.cat(out, dim=1) if out else torch.zeros(len(self.ensemble), 0)

    def score(self, images: torch.Tensor | None, state: torch.Tensor | None = None, goal: str = "") -> RewardOutput:
        """Ensemble-mean reward float32[B] of images uint8[B, V, H, W, 3], or of ``state``
        float32[B, D] when the model reads states (normalised when ``config.normalize``);
        ``goal`` is ignored."""
        if self.uses_state:
            if state is None:
                raise ValueError("preference: this model reads states (inputs: state) but got none")
            reward = self.member_rewards(state).mean(0)
        else:
            reward = self.member_rewards(check_images(images, "preference")).mean(0)
        if self.config.normalize:
            reward = (reward - self.reward_mean) / self.reward_std
        return RewardOutput(reward=reward)

    @torch.no_grad()
    def pair_probabilities(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """float32[M, B]: each member's P(b is preferred to a) = sigmoid(r̂(b) - r̂(a))."""
        return torch.sigmoid(self.member_rewards(b) - self.member_rewards(a))

    def score_pairs(self, a: torch.Tensor, b: torch.Tensor, goal: str = "") -> torch.Tensor:
        """float32[B]: ensemble-mean probability that b (uint8[B, V, H, W, 3]) is closer to the goal than a."""
        return self.pair_probabilities(a, b).mean(0)

    def relabel(self, buffer_images: torch.Tensor) -> torch.Tensor:
        """float32[N] rewards for a replay buffer's observations uint8[N, V, H, W, 3] (or
        uint8[N, H, W, 3] for one view), in batches: call after every ``update``."""
        if self.uses_state:
            return self.score(None, buffer_images).reward
        if buffer_images.ndim == 4:
            buffer_images = buffer_images.unsqueeze(1)
        return self.score(buffer_images).reward

    # -- choosing queries ----------------------------------------------------------------------

    def select_queries(self, a: torch.Tensor, b: torch.Tensor, num: int,
                       method: Literal["uniform", "disagreement"] = "disagreement") -> torch.Tensor:
        """int64[min(num, B)] indices of candidate pairs a, b uint8[B, V, H, W, 3] to label:
        uniformly at random, or the pairs on which the members' P(b better) varies most."""
        num = min(num, len(a))
        if method == "uniform":
            return torch.randperm(len(a), generator=self.generator)[:num]
        if method == "disagreement":
            if len(self.ensemble) < 2:
                raise ValueError("disagreement sampling needs ensemble_size >= 2")
            return torch.topk(self.pair_probabilities(a, b).std(0), num).indices
        raise ValueError(f"unknown query selection {method!r}; use 'uniform' or 'disagreement'")

    def query(self, labeller: Labeller, a: torch.Tensor, b: torch.Tensor, goal: str, num: int,
              method: Literal["uniform", "disagreement"] = "disagreement") -> dict[str, int]:
        """Select ``num`` of the candidate pairs, have ``labeller`` judge them, keep the labelled
        ones. Call ``update`` afterwards. Returns how many were asked and kept."""
        index = self.select_queries(a, b, num, method)
        kept = self.add_labels(a[index], b[index], labeller.label(a[index], b[index], goal))
        return {"asked": len(index), "kept": kept}

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the ensemble weights, architecture and normalisation (``torch.load(weights_only=True)``-safe)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        config = {**dataclasses.asdict(self.config), "channels": list(self.config.channels),
                  "strides": list(self.config.strides), "checkpoint": None}
        write_checked(Path(path), {"format": CHECKPOINT_FORMAT, "config": config,
                                   "state_dict": self.ensemble.state_dict(), "reward_mean": self.reward_mean,
                                   "reward_std": self.reward_std})

    @classmethod
    def load(cls, path: str | Path, **options: object) -> PreferenceReward:
        """A reward model from ``save``'s file; ``options`` change non-architecture fields (e.g. device)."""
        return cls(checkpoint=str(path), **options)

    # -- helpers -------------------------------------------------------------------------------

    def _check(self, images: torch.Tensor, name: str) -> torch.Tensor:
        if self.uses_state:
            images = torch.as_tensor(images, dtype=torch.float32)
            if images.ndim != 2 or images.shape[1] != self.config.state_dim:
                raise ValueError(f"preference: {name} must be states float[B, {self.config.state_dim}], got shape "
                                 f"{tuple(images.shape)}; set state_dim to the size of the observation group")
            return images
        check_images(images, f"preference ({name})")
        if images.shape[1] != self.config.views:
            raise ValueError(f"preference: {name} has {images.shape[1]} views; the model takes {self.config.views}")
        return images

    def _input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8[B, V, H, W, 3] -> float32[B, 3V, H, W] in [-0.5, 0.5] on the model's device
        (states pass through)."""
        if self.uses_state:
            return images.to(self.device, torch.float32)
        b, v, h, w, _ = images.shape
        x = images.to(self.device).permute(0, 1, 4, 2, 3).reshape(b, v * 3, h, w)
        return x.float() / 255.0 - 0.5


@dataclass(frozen=True)
class QuerySchedule:
    """When to ask for labels during online RL (PEBBLE / RL-VLM-F): nothing during seed and
    unsupervised exploration, then ``per_update`` queries every ``every`` env steps, within ``budget``."""

    first_step: int = 10_000
    """Env steps before the first query and reward update."""
    every: int = 5_000
    """Env steps between updates."""
    per_update: int = 50
    """Pairs asked at each update."""
    budget: int = 10_000
    """Pairs asked over the whole run."""

    def queries_at(self, step: int) -> int:
        """Pairs to ask at env step ``step``: 0 between updates and once the budget is spent."""
        if step < self.first_step or (step - self.first_step) % self.every:
            return 0
        asked_before = (step - self.first_step) // self.every * self.per_update
        return max(0, min(self.per_update, self.budget - asked_before))
