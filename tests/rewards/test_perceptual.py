"""Perceptual rewards: step segmentation, feature selection, step combination, encoders, save/load."""

from __future__ import annotations

import itertools

import pytest
import torch

from robot_rl.rewards.base import REWARDS, RewardModule
from robot_rl.rewards.perceptual import FrozenEncoder, PerceptualReward, segment, select_features


def _sse(x: torch.Tensor, bounds: list[int]) -> float:
    return sum(float(((x[a:b] - x[a:b].mean(0)) ** 2).sum()) for a, b in zip(bounds[:-1], bounds[1:]))


def test_segmentation_recovers_known_step_boundaries() -> None:
    gen = torch.Generator().manual_seed(0)
    levels = torch.tensor([[0.0, 0.0, 1.0, 0.0], [1.0, 0.5, 0.0, 0.0], [1.0, 2.0, 0.0, 1.0]])
    lengths = [7, 5, 8]
    x = torch.cat([level.expand(n, 4) for level, n in zip(levels, lengths)])
    x = x + 0.05 * torch.randn(x.shape, generator=gen)
    assert segment(x, 3) == [0, 7, 12, 20]


def test_segmentation_is_the_exact_minimum() -> None:
    x = torch.randn(9, 2, generator=torch.Generator().manual_seed(1))
    found = segment(x, 3, min_length=2)
    candidates = [[0, a, b, 9] for a, b in itertools.combinations(range(1, 9), 2)
                  if a >= 2 and b - a >= 2 and 9 - b >= 2]
    best = min(candidates, key=lambda bounds: _sse(x, bounds))
    assert _sse(x, found) == pytest.approx(_sse(x, best))
    with pytest.raises(ValueError, match="cannot split"):
        segment(x, 5, min_length=2)


def test_feature_selection_picks_the_informative_dimensions() -> None:
    gen = torch.Generator().manual_seed(0)
    inside = torch.randn(200, 8, generator=gen)
    outside = torch.randn(400, 8, generator=gen)
    inside[:, 2] += 3.0   # separated by 3 stds
    inside[:, 5] -= 2.5
    inside[:, 7] = 3.0 + 10.0 * inside[:, 7]  # a larger mean gap, but buried in spread
    outside[:, 7] *= 10.0
    assert sorted(select_features(inside, outside, 2).tolist()) == [2, 5]


def test_steps_combine_into_reward_and_progress_later_steps_weighing_more() -> None:
    module = PerceptualReward(num_steps=3)
    big = -1e4  # log r of a step the frame looks nothing like
    log_r = torch.tensor([[0.0, big, big], [big, 0.0, big], [big, big, 0.0], [0.0, 0.0, 0.0]])
    reward, progress = module.combine(log_r)
    # weights 1, 2, 4 over their sum 7
    assert reward.tolist() == pytest.approx([1 / 7, 2 / 7, 4 / 7, 1.0])
    assert progress.tolist() == pytest.approx([0.0, 0.5, 1.0, 0.5])


def _synthetic_demos(n: int = 3, length: int = 12) -> list[torch.Tensor]:
    """A bright square sliding left to right: uint8[T, 1, 32, 32, 3] per demo."""
    demos = []
    for d in range(n):
        frames = torch.zeros(length, 1, 32, 32, 3, dtype=torch.uint8)
        for t in range(length):
            col = 2 + (24 * t) // (length - 1)
            frames[t, 0, 10 + d:16 + d, col:col + 6] = 255
        demos.append(frames)
    return demos


def test_registered_module_fits_scores_and_round_trips(tmp_path) -> None:
    demos = _synthetic_demos()
    module = REWARDS.get("perceptual")(num_steps=3, num_features=8, train={"steps": 20})
    assert isinstance(module, RewardModule)
    with pytest.raises(RuntimeError, match="fit"):
        module.score(demos[0], None, "")
    module.fit(demos)
    assert len(module.boundaries) == 3 and all(b[0] == 0 and b[-1] == 12 for b in module.boundaries)
    out = module.score(demos[0], None, "")
    assert out.reward.shape == (12,) and out.progress.shape == (12,)
    assert float(out.progress.min()) >= 0.0 and float(out.progress.max()) <= 1.0
    module.save(tmp_path / "perceptual.pt")
    again = PerceptualReward.load(tmp_path / "perceptual.pt")
    torch.testing.assert_close(again.score(demos[0], None, "").progress, out.progress)
    with pytest.raises(ValueError, match="images must be uint8"):
        module.score(demos[0].float(), None, "")


def test_frozen_encoder_adapts_a_clip_vision_tower(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                           num_attention_heads=2, image_size=32, patch_size=8, projection_dim=16)
    torch.manual_seed(0)
    tower = transformers.CLIPVisionModelWithProjection(config).eval()
    encoder = FrozenEncoder(tower, size=32, batch_size=5)
    images = _synthetic_demos(1)[0][:, 0]
    features = encoder(images)
    assert features.shape == (12, 16)
    x = torch.nn.functional.interpolate(images.permute(0, 3, 1, 2).float() / 255, size=(32, 32), mode="bilinear",
                                        antialias=True)
    with torch.no_grad():
        expected = tower((x - encoder.mean) / encoder.std).image_embeds
    torch.testing.assert_close(features, expected)
    # Token outputs are mean-pooled, feature maps spatially averaged.
    assert FrozenEncoder.pool(torch.ones(2, 5, 7)).shape == (2, 7)
    assert FrozenEncoder.pool(torch.ones(2, 7, 3, 3)).shape == (2, 7)

    module = PerceptualReward(num_steps=2, num_features=4, encoder=encoder).fit(_synthetic_demos())
    assert module.net is None
    module.save(tmp_path / "frozen.pt")
    with pytest.raises(ValueError, match="frozen encoder"):
        PerceptualReward.load(tmp_path / "frozen.pt")
    again = PerceptualReward.load(tmp_path / "frozen.pt", encoder=encoder)
    demo = _synthetic_demos(1)[0]
    torch.testing.assert_close(again.score(demo, None, "").reward, module.score(demo, None, "").reward)
