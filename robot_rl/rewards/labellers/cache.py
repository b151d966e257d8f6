"""Label caching, label logs, and replaying a log instead of asking the judge again.

    cache = LabelCache("labels_cache.jsonl")            # memory, plus disk when given a path
    log = LabelLog("run/labels.jsonl")
    judge = LoggedLabeller(CachedLabeller(vlm, cache), log)
    judge.label(a, b, goal)                             # VLM only on cache misses; every label logged
    ReplayLabeller("run/labels.jsonl").label(a, b, goal)  # the same labels, no VLM

Pairs are identified by the sha256 of each observation's pixels (see ``image_hashes``). Order
matters: (a, b) and (b, a) are different queries, because VLMs favour one position.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import torch

from robot_rl.rewards.labellers.base import Answer, Labeller, LabellerBase
from robot_rl.rewards.labellers.images import image_hashes


def _label_json(label: float) -> float | None:
    return None if math.isnan(label) else label


def _label_value(value: float | None) -> float:
    return math.nan if value is None else float(value)


class LabelCache:
    """Answers keyed on (hash of a, hash of b, goal, prompt, model id); in memory and, with a
    ``path``, appended to a JSONL file that is read back on construction."""

    def __init__(self, path: str | Path | None = None, cache_no_label: bool = True) -> None:
        """``cache_no_label``: also keep NaN answers (abstentions, unparsable text), so a
        deterministic judge is not asked again; failed queries and skips are never kept."""
        self.path = Path(path) if path is not None else None
        self.cache_no_label = cache_no_label
        self.hits = 0
        self.misses = 0
        self._answers: dict[str, Answer] = {}
        if self.path is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self._answers[record["key"]] = Answer(_label_value(record["label"]), record["kind"], record["raw"])

    @staticmethod
    def key(hash_a: str, hash_b: str, goal: str, prompt: str, model_id: str) -> str:
        return hashlib.sha256("\x1f".join((hash_a, hash_b, goal, prompt, model_id)).encode()).hexdigest()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: str) -> Answer | None:
        answer = self._answers.get(key)
        if answer is None:
            self.misses += 1
        else:
            self.hits += 1
        return answer

    def put(self, key: str, answer: Answer) -> None:
        if answer.kind in ("failed", "skipped") or (math.isnan(answer.label) and not self.cache_no_label):
            return
        self._answers[key] = answer
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            record = {"key": key, "label": _label_json(answer.label), "kind": answer.kind, "raw": answer.raw}
            with self.path.open("a") as file:
                file.write(json.dumps(record) + "\n")


class CachedLabeller(LabellerBase):
    """Asks ``inner`` only about pairs missing from ``cache`` (in one batch), then stores them."""

    def __init__(self, inner: Labeller, cache: LabelCache) -> None:
        super().__init__()
        self.inner, self.cache = inner, cache
        self.model_id, self.prompt = inner.model_id, inner.prompt

    def _answer(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> list[Answer]:
        keys = [LabelCache.key(ha, hb, goal, self.prompt, self.model_id)
                for ha, hb in zip(image_hashes(a), image_hashes(b))]
        answers: list[Answer | None] = [self.cache.get(key) for key in keys]
        missing = [i for i, answer in enumerate(answers) if answer is None]
        if missing:
            index = torch.tensor(missing)
            for i, answer in zip(missing, self.inner.answer(a[index], b[index], goal)):
                answers[i] = answer
                self.cache.put(keys[i], answer)
        return answers  # type: ignore[return-value]


class LabelLog:
    """An append-only JSONL record of every judged pair: sequence number, both hashes, goal,
    label, kind, raw answer, labeller id and time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._next = sum(1 for line in self.path.open() if line.strip()) if self.path.exists() else 0

    def write(self, hashes_a: list[str], hashes_b: list[str], goal: str, answers: list[Answer],
              labeller: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with self.path.open("a") as file:
            for hash_a, hash_b, answer in zip(hashes_a, hashes_b, answers):
                record = {"pair": self._next, "a": hash_a, "b": hash_b, "goal": goal,
                          "label": _label_json(answer.label), "kind": answer.kind, "raw": answer.raw,
                          "labeller": labeller, "time": now}
                file.write(json.dumps(record) + "\n")
                self._next += 1

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


class LoggedLabeller(LabellerBase):
    """Passes pairs to ``inner`` and writes every answer to ``log``."""

    def __init__(self, inner: Labeller, log: LabelLog) -> None:
        super().__init__()
        self.inner, self.log = inner, log
        self.model_id, self.prompt = inner.model_id, inner.prompt

    def _answer(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> list[Answer]:
        answers = self.inner.answer(a, b, goal)
        self.log.write(image_hashes(a), image_hashes(b), goal, answers, self.model_id)
        return answers


class ReplayLabeller(LabellerBase):
    """Gives back the labels a :class:`LabelLog` recorded, matched by (hash a, hash b, goal).

    A pair logged several times gets its logged answers in order, the n-th ask the n-th answer
    (then the last again), so replaying a run's queries reproduces its labels exactly. A pair
    the log does not hold raises ``KeyError`` (``strict``) or gets no label (kind ``"failed"``).
    """

    def __init__(self, path: str | Path, strict: bool = True) -> None:
        super().__init__()
        self.strict = strict
        self._answers: dict[tuple[str, str, str], list[Answer]] = {}
        self._asked: dict[tuple[str, str, str], int] = {}
        labellers = set()
        for record in LabelLog(path).records():
            key = (record["a"], record["b"], record["goal"])
            answer = Answer(_label_value(record["label"]), record["kind"], record["raw"])
            self._answers.setdefault(key, []).append(answer)
            labellers.add(record["labeller"])
        self.model_id = "replay:" + ",".join(sorted(labellers))
        self.prompt = "replay"

    def __len__(self) -> int:
        return len(self._answers)

    def _answer(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> list[Answer]:
        answers = []
        for key in zip(image_hashes(a), image_hashes(b), [goal] * len(a)):
            logged = self._answers.get(key)
            if logged is None:
                if self.strict:
                    raise KeyError(f"ReplayLabeller: pair {key[0][:12]}/{key[1][:12]} with goal {goal!r} is not in "
                                   "the log; replay only the pairs the logged run asked about")
                answers.append(Answer(math.nan, "failed", "not in the log"))
                continue
            asked = self._asked.get(key, 0)
            self._asked[key] = asked + 1
            answers.append(logged[min(asked, len(logged) - 1)])
        return answers
