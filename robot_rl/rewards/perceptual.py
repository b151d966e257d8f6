"""Unsupervised perceptual rewards (Sermanet et al.) from a few demonstrations.

    module = REWARDS.get("perceptual")(num_steps=4, num_features=16)     # trains its own encoder
    module.fit(demos)                          # list of uint8[T, V, H, W, 3] (or [T, H, W, 3]), <= ~5
    out = module.score(images=uint8[B, V, H, W, 3], state=None, goal="")
    out.reward, out.progress                   # float32[B], float32[B] in [0, 1]

Features come from an encoder, any callable ``uint8[B, H, W, 3] -> float32[B, D]``:

- by default a :class:`~robot_rl.rewards.cnn.SmallCNN` trained on the demo frames with a
  time-contrastive InfoNCE loss (:func:`train_time_contrastive`): a frame and one up to
  ``positive_window`` steps away from it in the same demo attract; frames of the same demo at
  least ``negative_margin`` steps apart repel. Frames of different demos are neither (they may
  show the same step with a different target), so the encoder is not pushed to tell demos apart;
- or a frozen pretrained vision model through :class:`FrozenEncoder` (e.g. a CLIP vision
  tower), which this module never loads itself.

Multi-view images are encoded view by view and the features concatenated.

Fitting (features standardised with the demo frames' mean and std):

1. **Steps.** Each demo is split into K contiguous segments minimising the total within-segment
   sum of squared deviations from the segment mean (:func:`segment`: exact dynamic programming
   over the time-ordered feature sequence, O(K·T²)). The paper minimises the average of the
   segments' variances by search; the squared-error sum is the same criterion weighted by
   segment length, and unlike the unweighted average it does not favour tiny segments.
2. **Features per step.** Frames of step k from every demo against all other demo frames;
   each feature's score is |μ_k − μ_rest| / (σ_k + σ_rest); the top M are kept
   (:func:`select_features`).
3. **Step similarity** on those M features, with the step's mean μ and std σ (σ floored at
   ``std_floor``, in units of the all-frames std, so a step seen in a handful of frames does
   not become a needle):  log r_k(x) = −½ · mean_d ((x_d − μ_kd) / σ_kd)², r_k in (0, 1].

Combining the K steps:

- reward = Σ_k w_k r_k / Σ_k w_k with w_k = 2^k (k = 0..K−1): later steps weigh more, as in
  the paper; in [0, 1].
- progress = Σ_k p_k · k/(K−1) with p = softmax_k(log r_k): the expected step index under
  the normalised step similarities, scaled to [0, 1] (0 = looks like the first step, 1 = like
  the last). Because it normalises across steps it stays informative far from all demo frames,
  where every r_k is tiny.

On held-out panda_reach episodes of mixed quality (tests/rewards/test_perceptual_panda.py) the
progress tracks ground truth far better than the paper's weighted sum (per-episode Spearman
0.90 vs 0.42): away from the demos' exact poses every r_k is small and the sum is mostly noise.
Prefer ``progress`` as the training signal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from robot_rl.rewards.base import REWARDS, RewardOutput, check_episodes, check_images
from robot_rl.rewards.cnn import SmallCNN, random_shift, to_float
from robot_rl.utils.files import read_checked, write_checked

Encoder = Callable[[torch.Tensor], torch.Tensor]
"""uint8[B, H, W, 3] -> float32[B, D]"""

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# -- segmentation and feature selection --------------------------------------------------------


def segment(features: torch.Tensor, num_steps: int, min_length: int = 1) -> list[int]:
    """Split float[T, D] into ``num_steps`` contiguous segments of at least ``min_length``
    frames minimising Σ_segments Σ_t ‖x_t − mean(segment)‖². Returns the K + 1 boundaries
    [0, b_1, ..., T]: segment k is frames b_k .. b_{k+1} − 1."""
    x = features.double()
    t = x.shape[0]
    if num_steps < 1 or num_steps * min_length > t:
        raise ValueError(f"cannot split {t} frames into {num_steps} segments of at least {min_length}")
    zero = torch.zeros(1, x.shape[1], dtype=x.dtype)
    csum = torch.cat([zero, x.cumsum(0)])  # [T+1, D]
    csq = torch.cat([torch.zeros(1, dtype=x.dtype), (x * x).sum(1).cumsum(0)])  # [T+1]
    idx = torch.arange(t + 1)
    n = (idx[None, :] - idx[:, None]).clamp_min(1).double()  # n[i, j] = j - i
    s = csum[None, :, :] - csum[:, None, :]  # [i, j, D]: sum of frames i..j-1
    cost = (csq[None, :] - csq[:, None]) - (s * s).sum(-1) / n  # [i, j]
    valid = (idx[None, :] - idx[:, None]) >= min_length
    cost = torch.where(valid, cost, torch.full_like(cost, float("inf")))
    best = torch.full((num_steps + 1, t + 1), float("inf"), dtype=x.dtype)
    arg = torch.zeros((num_steps + 1, t + 1), dtype=torch.long)
    best[0, 0] = 0.0
    for k in range(1, num_steps + 1):
        total = best[k - 1][:, None] + cost  # [i, j]
        best[k], arg[k] = total.min(dim=0)
    bounds = [t]
    for k in range(num_steps, 0, -1):
        bounds.append(int(arg[k, bounds[-1]]))
    return bounds[::-1]


def select_features(inside: torch.Tensor, outside: torch.Tensor, num_features: int) -> torch.Tensor:
    """Indices int64[M] of the features of float[n, D] (frames of a step) that best separate
    them from float[m, D] (all other frames): top M by |μ_in − μ_out| / (σ_in + σ_out)."""
    gap = (inside.mean(0) - outside.mean(0)).abs()
    spread = inside.std(0, unbiased=False) + outside.std(0, unbiased=False) + 1e-8
    return torch.topk(gap / spread, min(num_features, inside.shape[1])).indices


# -- encoders ----------------------------------------------------------------------------------


class FrozenEncoder:
    """Adapts a frozen pretrained vision model to an :data:`Encoder`.

    ``model`` takes float32[B, 3, size, size] pixels, resized and normalised with ``mean``/``std``
    (CLIP's by default), and returns features float[B, D], tokens float[B, N, D] or feature maps
    float[B, D, h, w] (averaged), or a transformers output (``image_embeds``, else
    ``pooler_output``, else the mean of ``last_hidden_state``). E.g. a CLIP vision tower::

        tower = CLIPVisionModelWithProjection.from_pretrained(local_dir).eval()
        encoder = FrozenEncoder(tower, size=224)
    """

    def __init__(self, model: Callable[[torch.Tensor], Any], size: int = 224,
                 mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD, batch_size: int = 64) -> None:
        self.model, self.size, self.batch_size = model, size, batch_size
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    @staticmethod
    def pool(output: Any) -> torch.Tensor:
        """float32[B, D] from whatever the model returned (see the class docstring)."""
        for name in ("image_embeds", "pooler_output"):
            value = getattr(output, name, None)
            if isinstance(value, torch.Tensor):
                return value.float()
        if not isinstance(output, torch.Tensor):
            output = getattr(output, "last_hidden_state", None)
            if output is None:
                raise TypeError("FrozenEncoder: the model returned neither a tensor nor image_embeds/"
                                "pooler_output/last_hidden_state")
        if output.ndim == 3:
            return output.float().mean(1)
        if output.ndim == 4:
            return output.float().mean((2, 3))
        return output.float()

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8[B, H, W, 3] -> float32[B, D]"""
        out = []
        for chunk in images.split(self.batch_size):
            x = chunk.permute(0, 3, 1, 2).float().div(255.0)
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
            out.append(self.pool(self.model((x - self.mean) / self.std)))
        return torch.cat(out)


@dataclass(frozen=True)
class TimeContrastiveConfig:
    """How :func:`train_time_contrastive` trains."""

    steps: int = 150
    """Gradient steps."""
    batch_size: int = 32
    """Anchor frames per step (each with one positive)."""
    positive_window: int = 2
    """A positive is 1..positive_window frames from its anchor."""
    negative_margin: int = 6
    """Frames of the same demo at least this far apart are negatives; nearer ones are ignored."""
    temperature: float = 0.1
    lr: float = 1e-3
    shift: int = 4
    """Random-shift augmentation in pixels."""
    cross_demo: float = 0.0
    """Probability that an anchor's positive comes from another demo, at the same fraction of
    its length (for demos paced alike); when above 0, frames of other demos far apart in that
    fraction are negatives too."""
    seed: int = 0


def train_time_contrastive(net: SmallCNN, demos: Sequence[torch.Tensor],
                           config: TimeContrastiveConfig = TimeContrastiveConfig()) -> list[float]:
    """Train ``net`` on demo frames uint8[T_i, H, W, 3] with the time-contrastive InfoNCE loss
    (see the module docstring), embeddings L2-normalised. Returns the loss of every step."""
    gen = torch.Generator().manual_seed(config.seed)
    lengths = torch.tensor([len(d) for d in demos])
    frames = torch.cat(list(demos))
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    net.train()
    losses = []
    for _ in range(config.steps):
        ep = torch.randint(len(demos), (config.batch_size,), generator=gen)
        t = (torch.rand(config.batch_size, generator=gen) * lengths[ep]).long()
        delta = torch.randint(1, config.positive_window + 1, (config.batch_size,), generator=gen)
        sign = torch.where(torch.rand(config.batch_size, generator=gen) < 0.5, -1, 1)
        tp = t + sign * delta
        tp = torch.where((tp < 0) | (tp >= lengths[ep]), t - sign * delta, tp)
        tp = torch.minimum(tp.clamp_min(0), lengths[ep] - 1)
        span = (lengths - 1).clamp_min(1).float()
        ep_p = ep
        if config.cross_demo > 0 and len(demos) > 1:
            other = (ep + torch.randint(1, len(demos), ep.shape, generator=gen)) % len(demos)
            ep_p = torch.where(torch.rand(ep.shape, generator=gen) < config.cross_demo, other, ep)
            tp = (tp / span[ep] * span[ep_p]).round().long()
        x = to_float(torch.cat([frames[offsets[ep] + t], frames[offsets[ep_p] + tp]]))
        z = F.normalize(net.forward_float(random_shift(x, config.shift, gen)), dim=1)
        za, zp = z.split(config.batch_size)
        logits = za @ zp.T / config.temperature  # [anchor, candidate]
        # Time gap between anchor i and candidate j, in frames of the anchor's demo.
        gap = (t[:, None] / span[ep][:, None] - tp[None, :] / span[ep_p][None, :]).abs() * span[ep][:, None]
        comparable = ep[:, None] == ep_p[None, :] if config.cross_demo <= 0 else torch.ones_like(gap, dtype=torch.bool)
        keep = (comparable & (gap >= config.negative_margin)) | torch.eye(config.batch_size, dtype=torch.bool)
        logits = logits.masked_fill(~keep, float("-inf"))
        loss = F.cross_entropy(logits, torch.arange(config.batch_size))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    net.eval()
    return losses


# -- the reward module -------------------------------------------------------------------------


@dataclass
class _Step:
    features: torch.Tensor
    """int64[M]: selected feature indices."""
    mean: torch.Tensor
    """float32[M]"""
    std: torch.Tensor
    """float32[M]"""


@REWARDS.register("perceptual")
class PerceptualReward:
    """Step-wise perceptual reward fitted on a few demos (see the module docstring).

    Args:
        num_steps: K, the steps each demo is split into.
        num_features: M, features kept per step.
        min_step_length: fewest frames in a step of a demo.
        std_floor: lower bound of a step feature's σ, in units of that feature's std over all
            demo frames.
        encoder: an :data:`Encoder` (e.g. :class:`FrozenEncoder`); default: a SmallCNN trained
            time-contrastively on the demos during :meth:`fit`.
        feature_dim: output size of the default encoder.
        train: how the default encoder is trained.
    """

    uses_images = True
    uses_state = False

    def __init__(self, num_steps: int = 4, num_features: int = 16, min_step_length: int = 2, std_floor: float = 1.0,
                 encoder: Encoder | None = None, feature_dim: int = 32,
                 train: TimeContrastiveConfig | dict | None = None) -> None:
        if num_steps < 2:
            raise ValueError(f"perceptual: num_steps must be at least 2, got {num_steps}")
        self.num_steps, self.num_features = num_steps, num_features
        self.min_step_length, self.std_floor = min_step_length, std_floor
        if isinstance(train, dict):
            train = TimeContrastiveConfig(**train)
        self.train_config = train or TimeContrastiveConfig()
        self.net = None
        if encoder is None:
            with torch.random.fork_rng():
                torch.manual_seed(self.train_config.seed)
                self.net = SmallCNN(feature_dim)
        self.encoder: Encoder = encoder if encoder is not None else self.net
        self.feature_mean = self.feature_std = None
        self.steps: list[_Step] = []
        self.boundaries: list[list[int]] = []
        """Per demo, the K + 1 step boundaries found by :func:`segment`."""
        self.train_losses: list[float] = []

    # -- fitting ---------------------------------------------------------------------------------

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8[B, V, H, W, 3] -> standardised float32[B, V·D] (raw before :meth:`fit` sets the statistics)."""
        b, v = images.shape[:2]
        x = self.encoder(images.flatten(0, 1)).float().reshape(b, -1)
        if self.feature_mean is not None:
            x = (x - self.feature_mean) / self.feature_std
        return x

    def fit(self, demos: Sequence[torch.Tensor]) -> PerceptualReward:
        """Fit steps and step models on demos uint8[T_i, V, H, W, 3] (or [T_i, H, W, 3])."""
        demos = check_episodes(demos, "perceptual")
        if self.net is not None:
            views = [d[:, v] for d in demos for v in range(d.shape[1])]  # each view in time order
            self.train_losses = train_time_contrastive(self.net, views, self.train_config)
        self.feature_mean = self.feature_std = None
        feats = [self.features(d) for d in demos]
        everything = torch.cat(feats)
        self.feature_mean = everything.mean(0)
        self.feature_std = everything.std(0, unbiased=False).clamp_min(1e-6)
        feats = [(f - self.feature_mean) / self.feature_std for f in feats]
        self.boundaries = [segment(f, self.num_steps, self.min_step_length) for f in feats]
        labels = torch.cat([
            torch.repeat_interleave(torch.arange(self.num_steps), torch.tensor(b).diff()) for b in self.boundaries
        ])
        x = torch.cat(feats)
        self.steps = []
        for k in range(self.num_steps):
            inside, outside = x[labels == k], x[labels != k]
            idx = select_features(inside, outside, self.num_features)
            std = inside[:, idx].std(0, unbiased=False).clamp_min(self.std_floor)
            self.steps.append(_Step(idx, inside[:, idx].mean(0), std))
        return self

    # -- scoring ---------------------------------------------------------------------------------

    def step_log_similarity(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised features float32[B, F] -> log r float32[B, K]."""
        cols = [-0.5 * ((x[:, s.features] - s.mean) / s.std).pow(2).mean(1) for s in self.steps]
        return torch.stack(cols, dim=1)

    def combine(self, log_r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log r float32[B, K] -> (reward, progress), each float32[B] in [0, 1]."""
        k = log_r.shape[1]
        weights = 2.0 ** torch.arange(k, dtype=log_r.dtype)
        reward = (log_r.exp() * weights).sum(1) / weights.sum()
        position = torch.arange(k, dtype=log_r.dtype) / (k - 1)
        progress = (log_r.softmax(dim=1) * position).sum(1)
        return reward, progress

    @torch.no_grad()
    def score(self, images: torch.Tensor | None, state: torch.Tensor | None, goal: str) -> RewardOutput:
        """images uint8[B, V, H, W, 3] -> reward and progress float32[B] (``goal`` is unused:
        the demos define the task)."""
        images = check_images(images, "perceptual")
        if not self.steps:
            raise RuntimeError("perceptual: call fit(demos) (or load a fitted module) before score")
        reward, progress = self.combine(self.step_log_similarity(self.features(images.cpu())))
        return RewardOutput(reward=reward.float().to(images.device), progress=progress.float().to(images.device))

    # -- persistence -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "options": {"num_steps": self.num_steps, "num_features": self.num_features,
                        "min_step_length": self.min_step_length, "std_floor": self.std_floor,
                        "feature_dim": self.net.out_dim if self.net is not None else None,
                        "train": asdict(self.train_config)},
            "net": self.net.state_dict() if self.net is not None else None,
            "feature_mean": self.feature_mean, "feature_std": self.feature_std,
            "steps": [asdict(s) for s in self.steps], "boundaries": self.boundaries,
        }

    def save(self, path: str | Path) -> None:
        """Write the fitted module (and the default encoder's weights; a frozen encoder is not saved)."""
        write_checked(Path(path), self.state_dict())

    @classmethod
    def load(cls, path: str | Path, encoder: Encoder | None = None) -> PerceptualReward:
        """Read a module written by :meth:`save`; pass the same frozen ``encoder`` it was fitted with, if any."""
        state = read_checked(Path(path), None, "perceptual reward module")
        options = dict(state["options"])
        if state["net"] is None and encoder is None:
            raise ValueError(f"perceptual: {path} was fitted with a frozen encoder; pass encoder= to load it")
        feature_dim = options.pop("feature_dim") or 32
        module = cls(**options, encoder=encoder if state["net"] is None else None, feature_dim=feature_dim)
        if state["net"] is not None:
            module.net.load_state_dict(state["net"])
            module.net.eval()
        module.feature_mean, module.feature_std = state["feature_mean"], state["feature_std"]
        module.steps = [_Step(**s) for s in state["steps"]]
        module.boundaries = state["boundaries"]
        return module
