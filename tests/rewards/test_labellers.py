"""Labellers: answer parsing, the scripted oracle, the label cache, label logs and their replay,
the terminal labeller, and the PNG writer."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from robot_rl.rewards.labellers import (
    Answer,
    CachedLabeller,
    HumanLabeller,
    LabelCache,
    Labeller,
    LabellerBase,
    LabelLog,
    LoggedLabeller,
    OracleLabeller,
    ProgressTable,
    PromptConfig,
    ReplayLabeller,
    parse_answer,
)
from robot_rl.rewards.labellers.images import encode_png, image_hashes, side_by_side
from robot_rl.rewards.labellers.prompts import decide_from_logprobs

NAN = math.nan


def frames(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 8, 8, 3), generator=gen, dtype=torch.uint8)


def same(x: torch.Tensor, y: torch.Tensor) -> bool:
    return torch.equal(torch.isnan(x), torch.isnan(y)) and torch.equal(x.nan_to_num(-1), y.nan_to_num(-1))


# label: 0.0 = Image 1 (a), 1.0 = Image 2 (b), 0.5 = equal, NaN = no label.
PARSE_TABLE = [
    ("1", "12", 0.0, "preference"),
    ("2", "12", 1.0, "preference"),
    ("2.", "12", 1.0, "preference"),
    (" **1** ", "12", 0.0, "preference"),
    ("0", "12", 0.5, "tie"),
    ("-1", "12", NAN, "abstain"),
    ("0", "01", 0.0, "preference"),
    ("1", "01", 1.0, "preference"),
    ("-1", "01", NAN, "abstain"),
    ("2", "01", NAN, "unparsable"),
    ("Image 1", "12", 0.0, "preference"),
    ("Image 2.", "01", 1.0, "preference"),  # words are read the same in both schemes
    ("The first image.", "12", 0.0, "preference"),
    ("second", "12", 1.0, "preference"),
    ("Image 2 is closer to the goal than Image 1.", "12", 1.0, "preference"),
    ("In image 1 the gripper touches the ball.", "12", 0.0, "preference"),
    ("I can't tell.", "12", NAN, "abstain"),
    ("I can\u2019t tell which is better", "12", NAN, "abstain"),
    ("It is unclear whether Image 1 or Image 2 is better.", "12", NAN, "abstain"),
    ("Both images are equally close.", "12", 0.5, "tie"),
    ("They look the same", "12", 0.5, "tie"),
    ("There is no difference between them.", "12", 0.5, "tie"),
    ("Looking at the arm and the ball carefully. So the answer is Image 2", "12", 1.0, "preference"),
    ("Answer: 1", "12", 0.0, "preference"),
    ("Let me think. Final answer: -1", "12", NAN, "abstain"),
    ("Looking at both pictures, the gripper moved. Therefore image 2.", "12", 1.0, "preference"),
    ("2 images show a robot", "12", NAN, "unparsable"),
    ("", "12", NAN, "unparsable"),
    ("\u00e9\u00df\u20ac ##@@ ???", "12", NAN, "unparsable"),
    ("banana", "12", NAN, "unparsable"),
    ("1.5 metres", "12", NAN, "unparsable"),
]


@pytest.mark.parametrize(("text", "scheme", "label", "kind"), PARSE_TABLE)
def test_parse_answer(text: str, scheme: str, label: float, kind: str) -> None:
    answer = parse_answer(text, scheme)
    assert answer.kind == kind
    assert (math.isnan(answer.label) and math.isnan(label)) or answer.label == label
    assert answer.raw == text


def test_logprob_decisions() -> None:
    config = PromptConfig(mode="logprob", tie_margin=0.1, min_answer_prob=0.05)
    assert decide_from_logprobs(math.log(0.2), math.log(0.6), config).label == 1.0
    assert decide_from_logprobs(math.log(0.6), math.log(0.2), config).label == 0.0
    assert decide_from_logprobs(math.log(0.30), math.log(0.31), config).kind == "tie"
    assert decide_from_logprobs(math.log(0.01), math.log(0.02), config).kind == "unparsable"
    assert decide_from_logprobs(-math.inf, -math.inf, PromptConfig()).kind == "unparsable"
    assert decide_from_logprobs(-math.inf, -3.0, PromptConfig()).label == 1.0


def test_oracle_flip_tie_and_skip_rates() -> None:
    n = 20_000
    gen = torch.Generator().manual_seed(0)
    pa, pb = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    oracle = OracleLabeller(lambda x: x, flip_prob=0.2, tie_threshold=0.1, skip_prob=0.05, seed=1)
    answers = oracle.label_progress(pa, pb)
    labels = torch.tensor([a.label for a in answers])
    kinds = [a.kind for a in answers]
    # P(|U1 - U2| <= 0.1) = 1 - 0.9^2 = 0.19 for independent uniforms; skips come first (5%).
    assert kinds.count("skipped") / n == pytest.approx(0.05, abs=0.006)
    assert kinds.count("tie") / n == pytest.approx(0.95 * 0.19, abs=0.01)
    hard = torch.tensor([k == "preference" for k in kinds])
    wrong = labels[hard] != (pb > pa).float()[hard]
    assert float(wrong.float().mean()) == pytest.approx(0.2, abs=0.012)
    assert torch.all(labels[torch.tensor([k == "tie" for k in kinds])] == 0.5)
    again = OracleLabeller(lambda x: x, flip_prob=0.2, tie_threshold=0.1, skip_prob=0.05, seed=1).label_progress(pa, pb)
    assert [a.kind for a in again] == kinds  # a seed reproduces every decision


def test_oracle_tie_noise_blurs_the_threshold() -> None:
    n = 10_000
    oracle = OracleLabeller(lambda x: x, tie_threshold=0.1, tie_noise=0.05, seed=0)
    at_threshold = oracle.label_progress(torch.zeros(n), torch.full((n,), 0.1))
    # gap + N(0, 0.05^2) <= 0.1 half the time at the threshold, 97.7% at gap 0, 2.3% at 0.2.
    assert sum(a.kind == "tie" for a in at_threshold) / n == pytest.approx(0.5, abs=0.03)
    equal = oracle.label_progress(torch.zeros(n), torch.zeros(n))
    assert sum(a.kind == "tie" for a in equal) / n == pytest.approx(0.977, abs=0.01)
    far = oracle.label_progress(torch.zeros(n), torch.full((n,), 0.2))
    assert sum(a.kind == "tie" for a in far) / n == pytest.approx(0.023, abs=0.01)
    exact = OracleLabeller(lambda x: x).label_progress(torch.tensor([0.3]), torch.tensor([0.3]))
    assert exact[0].kind == "tie"  # equal progress is a tie even at threshold 0


def test_oracle_judges_images_through_a_progress_table() -> None:
    images = frames(6)
    table = ProgressTable(images, torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]))
    oracle = OracleLabeller(table)
    assert isinstance(oracle, Labeller)
    labels = oracle.label(images[[0, 5, 2, 3]], images[[1, 4, 2, 1]], "goal")
    assert labels.tolist() == [1.0, 0.0, 0.5, 0.0]
    assert oracle.counts.as_dict() == {"preference": 3, "tie": 1, "abstain": 0, "unparsable": 0, "failed": 0,
                                       "skipped": 0, "queried": 4, "no_label": 0}
    with pytest.raises(KeyError, match="not in the table"):
        oracle.label(frames(1, seed=9), images[:1], "goal")
    with pytest.raises(ValueError, match="equal counts"):
        oracle.label(images[:2], images[:3], "goal")


class Scripted(LabellerBase):
    """Answers from a fixed list in turn, counting the pairs it was asked about."""

    def __init__(self, answers: list[Answer], model_id: str = "scripted") -> None:
        super().__init__()
        self.answers, self.asked = answers, 0
        self.model_id, self.prompt = model_id, "which is closer?"

    def _answer(self, a, b, goal):
        out = [self.answers[(self.asked + i) % len(self.answers)] for i in range(len(a))]
        self.asked += len(a)
        return out


SCRIPT = [Answer(1.0, "preference", "2"), Answer(NAN, "abstain", "can't tell"), Answer(0.5, "tie", "0"),
          Answer(NAN, "unparsable", "blah"), Answer(NAN, "failed", "timeout"), Answer(0.0, "preference", "1")]


def test_cache_hits_and_misses(tmp_path) -> None:
    a, b = frames(6, 1), frames(6, 2)
    inner = Scripted(SCRIPT)
    cache = LabelCache(tmp_path / "cache.jsonl")
    cached = CachedLabeller(inner, cache)
    first = cached.label(a, b, "goal")
    assert inner.asked == 6 and (cache.hits, cache.misses) == (0, 6)
    assert len(cache) == 5  # the failed query is not cached, so it will be asked again
    second = cached.label(a, b, "goal")
    assert inner.asked == 7 and (cache.hits, cache.misses) == (5, 7)
    assert same(first[:4], second[:4]) and first[5] == second[5]
    cached.label(a[:2], b[:2], "another goal")  # the goal is part of the key
    cached.label(b[:1], a[:1], "goal")  # so is the order of the pair
    assert inner.asked == 10
    other_model = CachedLabeller(Scripted(SCRIPT, model_id="other"), cache)
    other_model.label(a[:1], b[:1], "goal")
    assert other_model.inner.asked == 1
    assert cached.counts.queried == 15 and inner.counts.queried == 10  # wrapper counts cache hits too

    reloaded = LabelCache(tmp_path / "cache.jsonl")
    again = CachedLabeller(Scripted(SCRIPT), reloaded).label(a, b, "goal")
    assert (reloaded.hits, reloaded.misses) == (6, 0)  # the failed pair was answered on the second call
    assert same(again, second)
    no_nan = LabelCache(cache_no_label=False)
    CachedLabeller(Scripted(SCRIPT), no_nan).label(a, b, "goal")
    assert len(no_nan) == 3


def test_label_log_replays_labels_exactly(tmp_path) -> None:
    images = frames(20)
    progress = torch.linspace(0, 1, 20)
    oracle = OracleLabeller(ProgressTable(images, progress), flip_prob=0.3, tie_threshold=0.06, skip_prob=0.2,
                            seed=4)
    gen = torch.Generator().manual_seed(0)
    ia, ib = torch.randint(0, 20, (40,), generator=gen), torch.randint(0, 20, (40,), generator=gen)
    ia[30:], ib[30:] = ia[:10], ib[:10]  # pairs asked twice may get different answers (flips, skips)
    log = LabelLog(tmp_path / "run" / "labels.jsonl")
    logged = LoggedLabeller(oracle, log)
    labels = torch.cat([logged.label(images[ia[:25]], images[ib[:25]], "reach"),
                        logged.label(images[ia[25:]], images[ib[25:]], "reach")])
    records = log.records()
    assert [r["pair"] for r in records] == list(range(40))
    assert records[0]["a"] == image_hashes(images[ia[:1]])[0] and records[0]["labeller"] == oracle.model_id
    assert {"goal", "label", "kind", "raw", "time"} <= set(records[0])
    assert LabelLog(tmp_path / "run" / "labels.jsonl")._next == 40  # appending continues the numbering

    replay = ReplayLabeller(tmp_path / "run" / "labels.jsonl")
    assert not same(labels[:10], labels[30:])
    assert same(torch.cat([replay.label(images[ia[:7]], images[ib[:7]], "reach"),
                           replay.label(images[ia[7:]], images[ib[7:]], "reach")]), labels)
    assert replay.counts.skipped == oracle.counts.skipped > 0
    assert torch.isnan(labels).any() and (labels == 0.5).any()
    with pytest.raises(KeyError, match="not in the log"):
        replay.label(images[ia[:1]], images[ib[:1]], "another goal")
    lenient = ReplayLabeller(tmp_path / "run" / "labels.jsonl", strict=False)
    assert torch.isnan(lenient.label(frames(1, 5), frames(1, 6), "reach")).all()
    assert lenient.counts.failed == 1


def test_human_labeller_with_fake_input(tmp_path) -> None:
    keys = iter(["2", "maybe", "=", "", "1"])
    shown: list[str] = []
    human = HumanLabeller(tmp_path / "pairs", input_fn=lambda prompt: next(keys), print_fn=shown.append, scale=2)
    a, b = frames(4, 1), frames(4, 2)
    labels = human.label(a, b, "touch the ball")
    assert same(labels, torch.tensor([1.0, 0.5, NAN, 0.0]))
    assert human.counts.skipped == 1 and human.counts.tie == 1
    assert any("'maybe' is not one of" in line for line in shown)
    assert "touch the ball" in shown[0]
    from PIL import Image

    picture = Image.open(tmp_path / "pairs" / "pair_000000.png")
    assert picture.size == ((8 + 4 + 8) * 2, 8 * 2)
    left = np.asarray(picture)[::2, ::2][:, :8]
    assert np.array_equal(left, a[0, 0].numpy())

    def closed(prompt: str) -> str:
        raise EOFError

    rest = HumanLabeller(tmp_path / "more", input_fn=closed, print_fn=lambda line: None).label(a, b, "goal")
    assert torch.isnan(rest).all()


def test_png_round_trip() -> None:
    from PIL import Image

    image = frames(1)[0, 0].numpy()
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(image))).convert("RGB"))
    assert np.array_equal(decoded, image)
    joined = side_by_side(image, image[:4], gap=2)
    assert joined.shape == (8, 18, 3) and np.all(joined[:, 8:10] == 255)
    assert image_hashes(frames(2))[0] != image_hashes(frames(2))[1]
    assert image_hashes(frames(1)) == image_hashes(frames(1).clone())
