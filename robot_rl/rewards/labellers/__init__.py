"""Judges of pairwise preferences between observations, for preference-learned rewards.

Every labeller implements :class:`Labeller`: ``label(a, b, goal) -> float32[B]`` with 0.0 (a is
closer to the goal), 1.0 (b is), 0.5 (equally close) or NaN (no label), and counts its outcomes.

* :class:`OracleLabeller` — ground-truth progress with flips and ties (``oracle``).
* :class:`~robot_rl.rewards.labellers.vlm.VLMLabeller` — a local transformers VLM (``vlm``).
* :class:`~robot_rl.rewards.labellers.http.HTTPLabeller` — an OpenAI-compatible server (``http``).
* :class:`HumanLabeller` — a person at a terminal (``human``).
* :class:`CachedLabeller`, :class:`LoggedLabeller`, :class:`ReplayLabeller` — caching, logging
  and exact replays of any of them (``cache``).

``vlm`` and ``http`` are imported from their modules; transformers loads only when a
``VLMLabeller`` is built.
"""

from robot_rl.rewards.labellers.base import KINDS, Answer, LabelCounts, Labeller, LabellerBase, labels_of
from robot_rl.rewards.labellers.cache import CachedLabeller, LabelCache, LabelLog, LoggedLabeller, ReplayLabeller
from robot_rl.rewards.labellers.human import HumanLabeller
from robot_rl.rewards.labellers.oracle import OracleLabeller, ProgressTable
from robot_rl.rewards.labellers.prompts import PromptConfig, parse_answer

__all__ = [
    "KINDS", "Answer", "CachedLabeller", "HumanLabeller", "LabelCache", "LabelCounts", "LabelLog", "Labeller",
    "LabellerBase", "LoggedLabeller", "OracleLabeller", "ProgressTable", "PromptConfig", "ReplayLabeller",
    "labels_of", "parse_answer",
]
