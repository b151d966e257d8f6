"""What VLM labellers ask, and how answers become labels.

Two prompt styles (``PromptConfig.style``):

* ``"two_stage"`` (RL-VLM-F): the model first describes both images and compares them
  against the goal (``DESCRIBE``); a second, text-only turn gives it that analysis and asks
  for the verdict (``SUMMARY``). Better answers, two model calls per pair.
* ``"single"``: one question with both images asking for the verdict directly (``QUESTION``).

Two ways to read the verdict (``PromptConfig.mode``):

* ``"generate"``: the model writes an answer and :func:`parse_answer` reads it.
* ``"logprob"``: the next-token log-probabilities of the two answer tokens ("1"/"2" by
  default) decide (:func:`decide_from_logprobs`); no parsing, one label for every pair unless
  the answer tokens are improbable (``min_answer_prob``).

Answer scheme ``"12"`` (our prompts): 1 = Image 1 (label 0.0), 2 = Image 2 (1.0),
0 = equally close (0.5), -1 = cannot tell (no label). Scheme ``"01"`` reads RL-VLM-F's
original numbering: 0 = Image 1, 1 = Image 2, -1 = cannot tell.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Literal

from robot_rl.rewards.labellers.base import Answer

DESCRIBE = (
    "Consider two images of a robot. The goal is: {goal}.\n"
    "1. What is shown in Image 1?\n2. What is shown in Image 2?\n"
    "3. Is there any difference between Image 1 and Image 2 in terms of achieving the goal?"
)
VERDICT = (
    "Reply with only one number: 1 if the goal is better achieved in Image 1, 2 if it is better "
    "achieved in Image 2, 0 if both are equally close to it, or -1 if you cannot tell."
)
QUESTION = "The two images show a robot. The goal is: {goal}.\nIn which image is the goal better achieved? " + VERDICT
SUMMARY = (
    "Here is an analysis of two images of a robot, Image 1 and Image 2, for the goal: {goal}.\n"
    "{analysis}\n\nBased on this analysis, is the goal better achieved in Image 1 or Image 2? " + VERDICT
)
LOGPROB_VERDICT = "In which image is the goal better achieved? Answer {first} for Image 1 or {second} for Image 2."
IMAGE_TAGS = ("Image 1:", "Image 2:")


@dataclass(frozen=True)
class PromptConfig:
    """How a VLM labeller asks and how it reads the answer."""

    style: Literal["single", "two_stage"] = "two_stage"
    """``two_stage``: describe-and-compare, then a verdict turn (RL-VLM-F); ``single``: one turn."""
    mode: Literal["generate", "logprob"] = "generate"
    """``generate``: parse the written verdict; ``logprob``: compare log P of the answer tokens."""
    scheme: Literal["12", "01"] = "12"
    """How bare numbers in answers are read (see the module docstring)."""
    answer_tokens: tuple[str, str] = ("1", "2")
    """Logprob mode: the words that mean Image 1 / Image 2 (e.g. ("first", "second"))."""
    tie_margin: float = 0.0
    """Logprob mode: |log P(first) - log P(second)| below this gives a tie (0.5)."""
    min_answer_prob: float = 0.0
    """Logprob mode: P(first) + P(second) below this gives no label (the model is not answering)."""
    max_new_tokens: int = 16
    """Tokens generated for a verdict."""
    describe_max_new_tokens: int = 256
    """Tokens generated for the first (describe-and-compare) turn of ``two_stage``."""

    def identity(self) -> str:
        """The prompt texts and reading rules, as one string (part of the label-cache key)."""
        return json.dumps({**asdict(self), "texts": [DESCRIBE, QUESTION, SUMMARY, LOGPROB_VERDICT]}, sort_keys=True)


def first_turn(goal: str, config: PromptConfig) -> list[str | int]:
    """The turn that shows the images: text segments and image indices (0 = a, 1 = b)."""
    if config.style == "two_stage":
        text = DESCRIBE.format(goal=goal)
    elif config.mode == "logprob":
        text = f"The two images show a robot. The goal is: {goal}.\n" + _logprob_verdict(config)
    else:
        text = QUESTION.format(goal=goal)
    return [IMAGE_TAGS[0], 0, IMAGE_TAGS[1], 1, text]


def summary_turn(analysis: str, goal: str, config: PromptConfig) -> str:
    """The text-only verdict turn of ``two_stage``, given the first turn's answer."""
    text = SUMMARY.format(goal=goal, analysis=analysis.strip())
    if config.mode == "logprob":
        text = text[: -len(VERDICT)] + _logprob_verdict(config)
    return text


def _logprob_verdict(config: PromptConfig) -> str:
    return LOGPROB_VERDICT.format(first=config.answer_tokens[0], second=config.answer_tokens[1])


# -- reading answers ----------------------------------------------------------------------------

_ABSTAIN = re.compile(
    r"can ?not tell|can'?t tell|unsure|not sure|uncertain|unclear|(?:don'?t|do not) know|"
    r"can ?not (?:determine|say|decide)|can'?t (?:determine|say|decide)|impossible to (?:tell|determine|say)|"
    r"\bneither\b"
)
_TIE = re.compile(r"\bequal(?:ly)?\b|\bthe same\b|\btie\b|no (?:clear |visible |significant )?difference|"
                  r"\bindistinguishable\b")
_FIRST = re.compile(r"\b(?:image|picture|photo|frame|option)\s*(?:#\s*)?(?:1|one|a)\b|\bthe first\b|"
                    r"\bfirst (?:one|image|picture|photo|frame)\b|\bformer\b|^first\W*$")
_SECOND = re.compile(r"\b(?:image|picture|photo|frame|option)\s*(?:#\s*)?(?:2|two|b)\b|\bthe second\b|"
                     r"\bsecond (?:one|image|picture|photo|frame)\b|\blatter\b|^second\W*$")
_LEADING_NUMBER = re.compile(r"^[\s(\[]*(-1|0|1|2)(?![\w.,]\d|\d)(?!\s*(?:images?|pictures?)\b)")
_ANSWER_MARKER = re.compile(r"(?:final answer|answer|verdict)\s*(?:is|:|=|-)?\s*")
_NUMBERS = {"12": {"1": 0.0, "2": 1.0, "0": 0.5, "-1": math.nan},
            "01": {"0": 0.0, "1": 1.0, "-1": math.nan}}


def parse_answer(text: str, scheme: Literal["12", "01"] = "12") -> Answer:
    """Read a written verdict: label 0.0 (Image 1), 1.0 (Image 2), 0.5 (equal) or NaN.

    Rules, in order: the text after the last "answer:"/"answer is" marker is read instead of
    the whole text when there is one. A number at the very start is read with ``scheme``.
    Otherwise the first sentence decides: "cannot tell"-like phrases abstain, then "equal"-like
    phrases tie, else the first image it names wins ("Image 2 is closer than Image 1" -> 1.0).
    A first sentence naming nothing defers to the last thing named in the rest of the text
    ("Looking at both... so Image 2."). Nothing recognisable -> ``kind="unparsable"``.
    """
    clean = text.replace("\u2019", "'").lower()
    clean = re.sub(r"[*_`#>\"]", " ", clean).strip()
    markers = list(_ANSWER_MARKER.finditer(clean))
    if markers:
        clean = clean[markers[-1].end():].strip()
    if not clean:
        return Answer(math.nan, "unparsable", text)
    number = _LEADING_NUMBER.match(clean)
    if number:
        value = _NUMBERS[scheme].get(number.group(1))
        if value is not None:
            return Answer.of(value, text)
    first_sentence = re.split(r"(?<!\d)[.!?;\n]|[.!?;\n](?!\d)", clean, maxsplit=1)[0]
    if _ABSTAIN.search(first_sentence):
        return Answer(math.nan, "abstain", text)
    if _TIE.search(first_sentence):
        return Answer(0.5, "tie", text)
    mentions = _mentions(first_sentence)
    if mentions:
        return Answer.of(mentions[0][1], text)
    mentions = _mentions(clean)
    if mentions:
        return Answer.of(mentions[-1][1], text)
    return Answer(math.nan, "unparsable", text)


def _mentions(text: str) -> list[tuple[int, float]]:
    """(position, label) of every verdict-like phrase in ``text``, in order."""
    found = [(m.start(), math.nan) for m in _ABSTAIN.finditer(text)]
    found += [(m.start(), 0.5) for m in _TIE.finditer(text)]
    found += [(m.start(), 0.0) for m in _FIRST.finditer(text)]
    found += [(m.start(), 1.0) for m in _SECOND.finditer(text)]
    return sorted(found)


def decide_from_logprobs(logp_first: float, logp_second: float, config: PromptConfig) -> Answer:
    """Label from the log-probabilities of the two answer tokens (logprob mode)."""
    raw = f"logP({config.answer_tokens[0]})={logp_first:.4f} logP({config.answer_tokens[1]})={logp_second:.4f}"
    if not (math.isfinite(logp_first) or math.isfinite(logp_second)):
        return Answer(math.nan, "unparsable", raw)
    if math.exp(logp_first) + math.exp(logp_second) < config.min_answer_prob:
        return Answer(math.nan, "unparsable", raw)
    if abs(logp_first - logp_second) < config.tie_margin:
        return Answer(0.5, "tie", raw)
    return Answer(1.0 if logp_second > logp_first else 0.0, "preference", raw)
