"""Unit tests of the preference-learned reward: the Bradley–Terry loss, training steps, query
selection, pair sampling, persistence and the query schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robot_rl.rewards.base import REWARDS, PairwiseRewardModule, RewardOutput
from robot_rl.rewards.preference import (
    PreferenceReward,
    QuerySchedule,
    bradley_terry_loss,
    random_shift,
    sample_pairs,
)

SMALL = dict(channels=(4, 4), strides=(2, 2), hidden=8)



def images(n: int, seed: int = 0, views: int = 1, size: int = 16) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, views, size, size, 3), generator=gen, dtype=torch.uint8)


def test_bradley_terry_loss_matches_hand_computed_values() -> None:
    # r_a = 0, r_b = ln 3: softmax([0, ln 3]) = [1/4, 3/4].
    #   y = 1 (b preferred):  -ln(3/4)                     = 0.2876821
    #   y = 0 (a preferred):  -ln(1/4)                     = 1.3862944
    #   y = 0.5 (tie):        -(ln(1/4) + ln(3/4)) / 2     = 0.8369882
    r_a, r_b = torch.zeros(3), torch.full((3,), math.log(3.0))
    expected = [0.2876821, 1.3862944, 0.8369882]
    for i, y in enumerate([1.0, 0.0, 0.5]):
        loss = bradley_terry_loss(r_a[i:i + 1], r_b[i:i + 1], torch.tensor([y]))
        assert float(loss) == pytest.approx(expected[i], abs=1e-6)
    mean = bradley_terry_loss(r_a, r_b, torch.tensor([1.0, 0.0, 0.5]))
    assert float(mean) == pytest.approx(sum(expected) / 3, abs=1e-6)


def test_loss_gradient_raises_the_preferred_reward() -> None:
    r_a = torch.zeros(1, requires_grad=True)
    r_b = torch.zeros(1, requires_grad=True)
    bradley_terry_loss(r_a, r_b, torch.tensor([1.0])).backward()
    # d/dr_b = sigma(r_b - r_a) - 1 = -0.5; descent raises r_b and lowers r_a.
    assert float(r_b.grad) == pytest.approx(-0.5) and float(r_a.grad) == pytest.approx(0.5)


def test_a_training_step_moves_every_member_towards_the_label() -> None:
    model = PreferenceReward(**SMALL, shift=0, learning_rate=1e-2)
    a, b = images(1, seed=1), images(1, seed=2)
    before = model.member_rewards(torch.cat([a, b]))
    model.add_labels(a, b, torch.tensor([1.0]))
    stats = model.update(max_epochs=1)  # one pair, one batch: exactly one gradient step
    after = model.member_rewards(torch.cat([a, b]))
    assert stats["epochs"] == 1 and stats["pairs"] == 1
    margin_before, margin_after = before[:, 1] - before[:, 0], after[:, 1] - after[:, 0]
    # Adam's first step is lr * sign(grad) per weight, so to first order the margin
    # r(b) - r(a) grows by lr * sum |d(r_b - r_a)/dw|: guaranteed for every member.
    assert torch.all(margin_after > margin_before)
    assert float(model.score_pairs(a, b)) > float(torch.sigmoid(margin_before).mean())


def test_tie_loss_is_lowest_at_equal_rewards_and_training_on_ties_closes_the_gap() -> None:
    tie = torch.tensor([0.5])
    at_equal = bradley_terry_loss(torch.zeros(1), torch.zeros(1), tie)
    assert float(at_equal) == pytest.approx(math.log(2.0))
    apart = bradley_terry_loss(torch.zeros(1), torch.ones(1), tie)
    assert float(apart) > float(at_equal)
    assert float(apart) == pytest.approx(float(bradley_terry_loss(torch.ones(1), torch.zeros(1), tie)))
    r = torch.zeros(2, requires_grad=True)
    bradley_terry_loss(r[:1], r[1:], tie).backward()
    assert torch.allclose(r.grad, torch.zeros(2))

    model = PreferenceReward(**SMALL, shift=0, learning_rate=1e-2, max_epochs=20)
    a, b = images(8, seed=3), images(8, seed=4)
    gap_before = (model.member_rewards(a) - model.member_rewards(b)).abs().mean()
    model.fit(a, b, torch.full((8,), 0.5))
    gap_after = (model.member_rewards(a) - model.member_rewards(b)).abs().mean()
    assert gap_after < 0.5 * gap_before


class Brightness(nn.Module):
    """A stand-in member: reward = scale * mean pixel value."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x.mean(dim=(1, 2, 3))


def test_disagreement_sampling_picks_the_pairs_the_members_disagree_on() -> None:
    model = PreferenceReward(**SMALL)
    model.ensemble = nn.ModuleList([Brightness(8.0), Brightness(-8.0), Brightness(0.0)])
    # Pair i: a is uniform grey at level 128, b at levels[i]. Members see brightness gaps of
    # +d, -d, 0: P(b better) = sigmoid(8d), sigmoid(-8d), 0.5, whose spread grows with |d|.
    levels = torch.tensor([128, 250, 120, 0, 140, 128, 60, 200], dtype=torch.uint8)
    a = torch.full((8, 1, 4, 4, 3), 128, dtype=torch.uint8)
    b = levels.view(8, 1, 1, 1, 1).expand(8, 1, 4, 4, 3).contiguous()
    picked = model.select_queries(a, b, 3, "disagreement")
    assert sorted(picked.tolist()) == [1, 3, 7]  # |gaps| 122, 128, 72 are the largest
    spread = model.pair_probabilities(a, b).std(0)
    assert spread[0] == 0 and spread[5] == 0  # identical images: no disagreement
    uniform = model.select_queries(a, b, 5, "uniform")
    assert len(set(uniform.tolist())) == 5 and int(uniform.max()) < 8
    with pytest.raises(ValueError, match="uniform"):
        model.select_queries(a, b, 3, "entropy")


def test_query_labels_selected_pairs_and_drops_no_labels() -> None:
    class Alternating:
        model_id, prompt = "fake", "fake"

        def label(self, a, b, goal):
            return torch.tensor([1.0, math.nan, 0.5, 0.0])[: len(a)]

    model = PreferenceReward(**SMALL)
    out = model.query(Alternating(), images(10, 1), images(10, 2), "goal", 4, "uniform")
    assert out == {"asked": 4, "kept": 3}
    assert sorted(model.labels.tolist()) == [0.0, 0.5, 1.0]


def test_add_labels_checks_its_inputs() -> None:
    model = PreferenceReward(**SMALL)
    kept = model.add_labels(images(4, 1), images(4, 2), torch.tensor([0.0, math.nan, 1.0, math.nan]))
    assert kept == 2 and len(model.labels) == 2 and model.a.shape == (2, 1, 16, 16, 3)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        model.add_labels(images(1), images(1), torch.tensor([2.0]))
    with pytest.raises(ValueError, match="2 views"):
        model.add_labels(images(1, views=2), images(1, views=2), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="uint8"):
        model.score(torch.zeros(2, 1, 16, 16, 3))
    assert model.update(max_epochs=1)["pairs"] == 2


def test_sample_pairs_within_groups() -> None:
    gen = torch.Generator().manual_seed(0)
    pairs = sample_pairs(10, 500, gen)
    assert pairs.shape == (500, 2) and bool((pairs[:, 0] != pairs[:, 1]).all())
    groups = torch.tensor([0, 0, 0, 3, 3, 1, 1, 1, 1, 3])
    pairs = sample_pairs(10, 2000, gen, groups)
    assert bool((pairs[:, 0] != pairs[:, 1]).all()) and bool((groups[pairs[:, 0]] == groups[pairs[:, 1]]).all())
    assert set(pairs.flatten().tolist()) == set(range(10))  # every item gets partners
    with pytest.raises(ValueError, match="single item"):
        sample_pairs(3, 50, gen, torch.tensor([0, 0, 1]))


def test_random_shift_moves_both_images_of_a_pair_alike() -> None:
    x = torch.rand(2, 3, 8, 8)
    pair = torch.cat([x, x])  # rows i and 2 + i form a pair
    shifted = random_shift(pair, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == pair.shape
    assert torch.equal(shifted[:2], shifted[2:])


def test_registered_scores_relabels_and_is_pairwise() -> None:
    assert REWARDS.get("preference") is PreferenceReward
    model = REWARDS.get("preference")(**SMALL, views=2)
    assert isinstance(model, PairwiseRewardModule)
    batch = images(5, views=2)
    out = model.score(batch, None, "goal")
    assert isinstance(out, RewardOutput) and out.reward.shape == (5,) and out.reward.dtype == torch.float32
    assert torch.allclose(model.relabel(batch), out.reward)
    p = model.score_pairs(batch, images(5, seed=9, views=2), "goal")
    assert p.shape == (5,) and bool(((p > 0) & (p < 1)).all())
    one_view = PreferenceReward(**SMALL)
    assert one_view.relabel(images(3)[:, 0]).shape == (3,)  # uint8[N, H, W, 3] buffers


def test_normalised_scores_have_zero_mean_unit_std_on_the_labelled_images() -> None:
    model = PreferenceReward(**SMALL, normalize=True, max_epochs=2)
    a, b = images(16, 1), images(16, 2)
    model.fit(a, b, (torch.arange(16) % 2).float())
    reward = model.score(torch.cat([a, b])).reward
    assert float(reward.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(reward.std()) == pytest.approx(1.0, abs=1e-3)


def test_save_load_round_trip_weights_only(tmp_path) -> None:
    model = PreferenceReward(**SMALL, ensemble_size=2, normalize=True, seed=3, max_epochs=2)
    a, b = images(12, 1), images(12, 2)
    model.fit(a, b, (torch.arange(12) % 2).float())
    path = tmp_path / "reward" / "preference.pt"
    model.save(path)
    raw = torch.load(path, weights_only=True)  # no pickled classes
    assert raw["config"]["ensemble_size"] == 2 and raw["config"]["channels"] == [4, 4]
    loaded = PreferenceReward.load(path, hidden=99, ensemble_size=5, batch_size=7)  # architecture from the file
    assert loaded.config.hidden == 8 and len(loaded.ensemble) == 2
    assert loaded.config.normalize and loaded.config.seed == 3 and loaded.config.batch_size == 7
    test = images(6, 7)
    assert torch.allclose(loaded.score(test).reward, model.score(test).reward)
    via_registry = REWARDS.get("preference")(checkpoint=str(path))
    assert torch.allclose(via_registry.score_pairs(a[:3], b[:3]), model.score_pairs(a[:3], b[:3]))
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a preference-reward checkpoint"):
        PreferenceReward.load(tmp_path / "other.pt")


def test_query_schedule() -> None:
    schedule = QuerySchedule(first_step=1000, every=500, per_update=40, budget=100)
    assert [schedule.queries_at(s) for s in (0, 999, 1000, 1250, 1500, 2000, 2500)] == [0, 0, 40, 0, 40, 20, 0]


def test_state_inputs_are_standardised_by_the_first_labelled_states() -> None:
    from robot_rl.rewards.preference import PreferenceReward

    reward = PreferenceReward(inputs="state", state_dim=3, ensemble_size=2, max_epochs=1)
    gen = torch.Generator().manual_seed(0)
    # entry 0 varies around 5 by ±2, entry 1 around -1 by ±0.001 (std floored at 0.01), entry 2 is constant
    a = torch.stack([5 + 2 * torch.randn(64, generator=gen), -1 + 1e-3 * torch.randn(64, generator=gen),
                     torch.full((64,), 0.3)], dim=1)
    b = a + torch.tensor([1.0, 0.0, 0.0])
    reward.fit(a, b, torch.ones(64))
    states = torch.cat([a, b])
    for net in reward.ensemble:
        torch.testing.assert_close(net.input_mean, states.mean(0))
        torch.testing.assert_close(net.input_std, torch.tensor([float(states[:, 0].std()), 0.01, 0.01]))
    first = [net.input_mean.clone() for net in reward.ensemble]
    reward.add_labels(a + 100, b + 100, torch.ones(64))  # later labels do not move the statistics
    reward.update(max_epochs=1)
    for net, mean in zip(reward.ensemble, first):
        torch.testing.assert_close(net.input_mean, mean)


def noisy_state_pairs(n: int, flip: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs of 4-number states judged by their first entry, a share ``flip`` of labels wrong."""
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, 4, generator=gen), torch.randn(n, 4, generator=gen)
    truth = (b[:, 0] > a[:, 0]).float()
    wrong = torch.rand(n, generator=gen) < flip
    return a, b, torch.where(wrong, 1.0 - truth, truth)


def test_held_out_pairs_keep_the_best_epochs_members_and_stop_after_patience() -> None:
    a, b, labels = noisy_state_pairs(400, flip=0.3)
    reward = PreferenceReward(inputs="state", state_dim=4, ensemble_size=2, hidden=64, learning_rate=1e-2,
                              max_epochs=200, validation_fraction=0.25, patience=3, seed=0)
    stats = reward.fit(a, b, labels)
    # 30% wrong labels: train accuracy cannot reach 0.97, so only the held-out loss can stop training
    assert stats["epochs"] < 200
    assert stats["epochs"] == stats["best_epoch"] + 3
    # the members kept are those of the best epoch: their held-out loss is the one reported
    gen = torch.Generator().manual_seed(reward.config.seed + 1)
    held = torch.randperm(400, generator=gen)[:100]
    loss, accuracy = reward._held_out(held)
    assert loss == pytest.approx(stats["held_out_loss"], rel=1e-5)
    assert accuracy == pytest.approx(stats["held_out_accuracy"])
    # and they rank fresh states by the entry the judge used despite the wrong labels
    fresh = torch.randn(200, 4, generator=torch.Generator().manual_seed(7))
    scores = reward.member_rewards(fresh).mean(0)
    order = torch.argsort(torch.argsort(scores)).float()
    truth = torch.argsort(torch.argsort(fresh[:, 0])).float()
    assert torch.corrcoef(torch.stack([order, truth]))[0, 1] > 0.8


def test_validation_fraction_must_leave_pairs_to_train_on() -> None:
    reward = PreferenceReward(inputs="state", state_dim=4, ensemble_size=1, max_epochs=2, validation_fraction=0.9)
    a, b, labels = noisy_state_pairs(2, flip=0.0)
    stats = reward.fit(a, b, labels)  # one pair held out, one trained on
    assert stats["epochs"] >= 1 and math.isfinite(stats["held_out_loss"])
