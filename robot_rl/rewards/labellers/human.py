"""A person at a terminal as the judge: each pair is saved as one PNG (a left, b right).

    labeller = HumanLabeller(out_dir="labels/pairs")
    labels = labeller.label(a, b, goal)     # prints the PNG path, asks 1 / 2 / = / s per pair

Keys: ``1`` the left image is closer to the goal (label 0.0), ``2`` the right one (1.0),
``=`` equally close (0.5), ``s`` or an empty line skips (no label). Anything else asks again,
up to ``max_attempts`` times; end of input skips the remaining pairs. ``input_fn`` and
``print_fn`` are injectable for tests and other front ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from robot_rl.rewards.labellers.base import Answer, LabellerBase
from robot_rl.rewards.labellers.images import encode_png, side_by_side, view_strip

KEYS = {"1": 0.0, "2": 1.0, "=": 0.5}
SKIP = ("s", "skip", "")


class HumanLabeller(LabellerBase):
    """Asks a person about each pair through ``input_fn``."""

    def __init__(
        self,
        out_dir: str | Path = "pairs",
        input_fn: Callable[[str], str] = input,
        print_fn: Callable[[str], None] = print,
        scale: int = 4,
        max_attempts: int = 3,
        name: str = "human",
    ) -> None:
        """``scale``: pixel repetition of the saved pictures (robot images are small);
        ``name`` identifies the person in cache keys and logs."""
        super().__init__()
        self.out_dir = Path(out_dir)
        self.input_fn, self.print_fn = input_fn, print_fn
        self.scale, self.max_attempts = scale, max_attempts
        self.model_id, self.prompt = f"human:{name}", "1 / 2 / = / s"
        self._saved = 0

    def _answer(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> list[Answer]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        answers: list[Answer] = []
        for i in range(len(a)):
            path = self.out_dir / f"pair_{self._saved:06d}.png"
            self._saved += 1
            path.write_bytes(encode_png(side_by_side(view_strip(a[i]), view_strip(b[i]), scale=self.scale)))
            self.print_fn(f"[{i + 1}/{len(a)}] goal: {goal}\n  {path}  (left = 1, right = 2)")
            try:
                answers.append(self._ask())
            except EOFError:
                answers += [Answer(math.nan, "skipped", "end of input")] * (len(a) - len(answers))
                break
        return answers

    def _ask(self) -> Answer:
        for _ in range(self.max_attempts):
            key = self.input_fn("Which is closer to the goal? 1 / 2 / = (equal) / s (skip): ").strip().lower()
            if key in KEYS:
                return Answer.of(KEYS[key], key)
            if key in SKIP:
                return Answer(math.nan, "skipped", key)
            self.print_fn(f"  {key!r} is not one of 1, 2, =, s")
        return Answer(math.nan, "skipped", "no valid key")
