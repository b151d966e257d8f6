"""The labeller protocol: who says which of two observations is closer to the goal.

Labels follow RL-VLM-F: the index of the preferred observation, so

    labels = labeller.label(a, b, goal)   # a, b: uint8[B, V, H, W, 3] -> float32[B]
    # 0.0: a is closer to the goal, 1.0: b is closer, 0.5: equally close (a soft "tie" label),
    # NaN: no label (the judge could not tell, its answer was unparsable, or the query failed)

which is the target of :meth:`PreferenceReward.score_pairs` (P(b is better)). No-label pairs are
dropped by the reward model; every labeller counts them by reason in ``counts``.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import torch

from robot_rl.rewards.labellers.images import check_pair_batch

log = logging.getLogger("robot_rl.rewards.labellers")

KINDS = ("preference", "tie", "abstain", "unparsable", "failed", "skipped")
"""Why a pair got its label: a preference (0 or 1), a tie (0.5), or a no-label reason (NaN):
the judge said it cannot tell, its answer could not be read, the query failed, or it skipped."""


class Answer(NamedTuple):
    """One judged pair: ``label`` in {0, 0.5, 1} or NaN, ``kind`` from :data:`KINDS`, and the
    judge's raw answer (model text, log-probabilities, a typed key) for logs and replays."""

    label: float
    kind: str
    raw: str = ""

    @staticmethod
    def of(label: float, raw: str = "") -> Answer:
        """The answer for a preference/tie label, or an abstention when ``label`` is NaN."""
        if math.isnan(label):
            return Answer(math.nan, "abstain", raw)
        return Answer(float(label), "tie" if label == 0.5 else "preference", raw)


@dataclass
class LabelCounts:
    """How many pairs a labeller judged, by outcome."""

    preference: int = 0
    tie: int = 0
    abstain: int = 0
    unparsable: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def queried(self) -> int:
        return sum(asdict(self).values())

    @property
    def no_label(self) -> int:
        """Pairs that got NaN: abstentions, unparsable answers, failed queries and skips."""
        return self.abstain + self.unparsable + self.failed + self.skipped

    def add(self, answers: list[Answer]) -> None:
        for answer in answers:
            setattr(self, answer.kind, getattr(self, answer.kind) + 1)

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "queried": self.queried, "no_label": self.no_label}


@runtime_checkable
class Labeller(Protocol):
    """Judges pairs of observations against a goal.

    ``model_id`` and ``prompt`` name the judge and its question (with ``goal``, they key the
    label cache); ``counts`` tallies outcomes over the labeller's life.
    """

    model_id: str
    prompt: str
    counts: LabelCounts

    def label(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> torch.Tensor:
        """float32[B] in {0, 0.5, 1} or NaN for observations a, b uint8[B, V, H, W, 3]."""
        ...

    def answer(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> list[Answer]:
        """The same judgement with the raw answers: one :class:`Answer` per pair."""
        ...


class LabellerBase(ABC):
    """Implements ``label`` and the counting; subclasses implement ``_answer``."""

    model_id: str = ""
    prompt: str = ""

    def __init__(self) -> None:
        self.counts = LabelCounts()
        self._unparsable_logged = 0

    def label(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> torch.Tensor:
        """float32[B] in {0, 0.5, 1} or NaN for observations a, b uint8[B, V, H, W, 3]."""
        return labels_of(self.answer(a, b, goal))

    def answer(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> list[Answer]:
        """One :class:`Answer` per pair of a, b uint8[B, V, H, W, 3]; counted in ``counts``."""
        a, b = check_pair_batch(a, b, type(self).__name__)
        answers = self._answer(a, b, goal) if len(a) else []
        if len(answers) != len(a):
            raise RuntimeError(f"{type(self).__name__} returned {len(answers)} answers for {len(a)} pairs")
        for answer in answers:
            self.counts.add([answer])
            if answer.kind in ("unparsable", "failed"):
                self._warn(answer)
        return answers

    @abstractmethod
    def _answer(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> list[Answer]:
        """One answer per pair; subclasses ask their judge."""

    def _warn(self, answer: Answer) -> None:
        # The first few bad answers at WARNING show what the judge says; the rest at DEBUG.
        level = logging.WARNING if self._unparsable_logged < 5 else logging.DEBUG
        self._unparsable_logged += 1
        log.log(level, "%s: %s answer, no label (%d so far): %r", self.model_id or type(self).__name__,
                answer.kind, self.counts.unparsable + self.counts.failed, answer.raw[:300])


def labels_of(answers: list[Answer]) -> torch.Tensor:
    """float32[B] labels of a list of answers."""
    return torch.tensor([answer.label for answer in answers], dtype=torch.float32)
