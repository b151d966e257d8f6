"""A scripted judge that knows the true progress of every observation, with tunable mistakes.

    table = ProgressTable(frames, progress)              # uint8[N, V, H, W, 3], float[N]
    oracle = OracleLabeller(table, flip_prob=0.1, tie_threshold=0.02, seed=0)
    labels = oracle.label(a, b, goal)                     # float32[B]

Like B-Pref's simulated teachers: a pair whose progress differs by at most
``tie_threshold`` is a tie (0.5); other pairs get the true preference, flipped with
probability ``flip_prob``; ``skip_prob`` of pairs get no label. All randomness comes from one
seeded generator, so a seed reproduces the labels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import torch

from robot_rl.rewards.labellers.base import Answer, LabellerBase
from robot_rl.rewards.labellers.images import image_hashes


class ProgressTable:
    """Looks up the true progress of observations by their pixels (content hash)."""

    def __init__(self, images: torch.Tensor, progress: torch.Tensor) -> None:
        """images uint8[N, V, H, W, 3] with their ground-truth progress float[N]."""
        if len(images) != len(progress):
            raise ValueError(f"ProgressTable: {len(images)} images but {len(progress)} progress values")
        self._progress = dict(zip(image_hashes(images), progress.detach().cpu().float().tolist()))

    def __len__(self) -> int:
        return len(self._progress)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """float32[B] progress of observations uint8[B, V, H, W, 3]; every one must be in the table."""
        try:
            return torch.tensor([self._progress[key] for key in image_hashes(images)], dtype=torch.float32)
        except KeyError:
            raise KeyError("ProgressTable: an observation is not in the table; the oracle can only judge "
                           "frames whose true progress it was given") from None


def progress_values_only(images: torch.Tensor) -> torch.Tensor:
    """The progress function of an oracle that is only given progress values
    (:meth:`OracleLabeller.label_progress`), e.g. for state inputs: it cannot judge pixels."""
    raise RuntimeError("this oracle labels from true progress values (label_progress), not from images")


class OracleLabeller(LabellerBase):
    """Labels pairs from ground-truth progress, with flips, ties and skips."""

    def __init__(
        self,
        progress: Callable[[torch.Tensor], torch.Tensor],
        flip_prob: float = 0.0,
        tie_threshold: float = 0.0,
        tie_noise: float = 0.0,
        skip_prob: float = 0.0,
        seed: int = 0,
    ) -> None:
        """
        Args:
            progress: maps observations uint8[B, V, H, W, 3] to true progress float[B]
                (a :class:`ProgressTable`, or a function of the pixels).
            flip_prob: probability that a non-tie label is the wrong way round.
            tie_threshold: pairs with |progress(b) - progress(a)| at most this are ties (0.5);
                at 0, only pairs of equal progress.
            tie_noise: standard deviation of Gaussian noise added to |progress(b) - progress(a)|
                before the tie test, so pairs near the threshold are ties only sometimes.
            skip_prob: probability that a pair gets no label (a judge that sometimes abstains).
            seed: seeds the generator of flips, tie noise and skips.
        """
        super().__init__()
        for name, p in (("flip_prob", flip_prob), ("skip_prob", skip_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"OracleLabeller: {name} must be in [0, 1], got {p}")
        self.progress = progress
        self.flip_prob, self.tie_threshold = flip_prob, tie_threshold
        self.tie_noise, self.skip_prob = tie_noise, skip_prob
        self.generator = torch.Generator().manual_seed(seed)
        self.model_id = "oracle:" + json.dumps(
            {"flip": flip_prob, "tie": tie_threshold, "tie_noise": tie_noise, "skip": skip_prob, "seed": seed})
        self.prompt = "ground-truth progress"

    def label_progress(self, progress_a: torch.Tensor, progress_b: torch.Tensor) -> list[Answer]:
        """Answers for pairs with true progress float[B] each (the labelling rule, without images)."""
        progress_a, progress_b = progress_a.float().cpu(), progress_b.float().cpu()
        n, gen = len(progress_a), self.generator
        gap = (progress_b - progress_a).abs()
        if self.tie_noise > 0:
            gap = gap + self.tie_noise * torch.randn(n, generator=gen)
        tie = gap <= self.tie_threshold
        flip = torch.rand(n, generator=gen) < self.flip_prob
        skip = torch.rand(n, generator=gen) < self.skip_prob
        truth = (progress_b > progress_a).float()
        labels = torch.where(flip, 1.0 - truth, truth)
        answers = []
        for i in range(n):
            raw = f"progress a={progress_a[i]:.4f} b={progress_b[i]:.4f}"
            raw += " flipped" if flip[i] and not tie[i] else ""
            if skip[i]:
                answers.append(Answer(math.nan, "skipped", raw))
            elif tie[i]:
                answers.append(Answer(0.5, "tie", raw))
            else:
                answers.append(Answer(float(labels[i]), "preference", raw))
        return answers

    def _answer(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> list[Answer]:
        return self.label_progress(self.progress(a), self.progress(b))
