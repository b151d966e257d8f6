"""VLM-RM reward math (hand-derived identities) and the vlm_zero_shot module's conventions.

With P = α·ddᵀ/‖d‖² + (1 − α)I and r(x) = 1 − ½‖(x − g)P‖²:

- α = 0, P = I:  r = 1 − ½(‖x‖² − 2x·g + ‖g‖²) = x·g + (1 − ‖g‖²)/2 for a unit x,
  i.e. ‖g‖·cos(x, g) + (1 − ‖g‖²)/2: affine in the cosine similarity, and equal to it when
  ‖g‖ = 1 (one goal prompt). Means of several unit prompts have ‖g‖ < 1.
- α = 1, P = d̂d̂ᵀ: P² = P, and r = 1 − ½((x − g)·d̂)² depends on x only through x·d̂.
- any α, u = x − g: uP = α(u·d̂)d̂ + (1 − α)u, so ‖uP‖² = (1 − (1 − α)²)(u·d̂)² + (1 − α)²‖u‖².
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from robot_rl.rewards.base import REWARDS, RewardModule, load_modules
from robot_rl.rewards.vlm_zero_shot import VLMZeroShotReward, projection, vlm_rm_reward

D = 8


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64),
                       dim=-1)


def test_alpha_0_is_cosine_similarity_for_one_goal_prompt() -> None:
    x, g, b = unit(16, seed=1), unit(seed=2), unit(seed=3)
    r = vlm_rm_reward(x, g, projection(g - b, 0.0))
    torch.testing.assert_close(r, F.cosine_similarity(x, g.expand_as(x), dim=-1))


def test_alpha_0_is_affine_in_cosine_for_a_mean_of_prompts() -> None:
    x, b = unit(16, seed=1), unit(seed=3)
    g = unit(3, seed=2).mean(dim=0)  # three goal prompts: ‖g‖ < 1
    assert float(g.norm()) < 0.99
    r = vlm_rm_reward(x, g, projection(g - b, 0.0))
    cos = F.cosine_similarity(x, g.expand_as(x), dim=-1)
    torch.testing.assert_close(r, g.norm() * cos + (1 - g.norm() ** 2) / 2)


def test_alpha_1_projection_is_idempotent_and_keeps_only_the_goal_direction() -> None:
    g, b = unit(seed=2), unit(seed=3)
    d = g - b
    p = projection(d, 1.0)
    torch.testing.assert_close(p @ p, p)
    torch.testing.assert_close(p, p.T)
    torch.testing.assert_close(d @ p, d)
    x = unit(16, seed=1)
    orthogonal = torch.randn(16, D, dtype=torch.float64)
    orthogonal -= (orthogonal @ d)[:, None] * d / d.dot(d)  # remove the component along d
    torch.testing.assert_close(vlm_rm_reward(x + orthogonal, g, p), vlm_rm_reward(x, g, p))
    d_hat = d / d.norm()
    torch.testing.assert_close(vlm_rm_reward(x, g, p), 1 - 0.5 * ((x - g) @ d_hat) ** 2)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_closed_form_for_any_alpha(alpha: float) -> None:
    x, g, b = unit(16, seed=1), unit(seed=2), unit(seed=3)
    d_hat = (g - b) / (g - b).norm()
    u = x - g
    along = u @ d_hat
    expected = 1 - 0.5 * ((1 - (1 - alpha) ** 2) * along**2 + (1 - alpha) ** 2 * u.pow(2).sum(-1))
    torch.testing.assert_close(vlm_rm_reward(x, g, projection(g - b, alpha)), expected)
    assert float(vlm_rm_reward(g[None], g, projection(g - b, alpha))) == pytest.approx(1.0)  # maximum at x = g


class FakeEncoder:
    """Prompts and images map to chosen unit vectors: an image whose pixels all equal k embeds
    as ``image_vectors[k]``."""

    def __init__(self, prompts: dict[str, torch.Tensor], image_vectors: torch.Tensor) -> None:
        self.prompts, self.image_vectors = prompts, image_vectors
        self.batches: list[int] = []

    def embed_texts(self, prompts):
        return torch.stack([self.prompts[p] for p in prompts])

    def embed_images(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        self.batches += [len(c) for c in images.split(batch_size)]
        return self.image_vectors[images[:, 0, 0, 0].long()]


def images_of(*codes: list[int]) -> torch.Tensor:
    """uint8[B, V, 4, 4, 3]: world i, view j filled with codes[i][j]."""
    return torch.tensor(codes, dtype=torch.uint8)[:, :, None, None, None].expand(-1, -1, 4, 4, 3).contiguous()


def fake_module(**options) -> tuple[VLMZeroShotReward, FakeEncoder]:
    e = torch.eye(4)
    prompts = {"goal": e[0], "baseline": e[1], "avoid": e[2]}
    encoder = FakeEncoder(prompts, image_vectors=torch.stack([e[0], e[2], e[3], F.normalize(e[0] + e[3], dim=0)]))
    return VLMZeroShotReward(encoder=encoder, baseline="baseline", **options), encoder


def test_contrasting_goals_score_the_positive_goal_higher() -> None:
    module, _ = fake_module(negative_goals=["avoid"], alpha=0.5)
    out = module.score(images_of([0], [1], [2]), None, "goal")  # embeddings = goal, negative, neither
    r = out.reward
    assert r.shape == (3,) and r.dtype == torch.float32
    assert r[0] > r[2] > r[1]
    # α = 0, unit prompts: cos(x, g) − cos(x, n)
    module0, _ = fake_module(negative_goals=["avoid"], alpha=0.0)
    torch.testing.assert_close(module0.score(images_of([0], [1], [2]), None, "goal").reward,
                               torch.tensor([1.0, -1.0, 0.0]))


def test_multi_view_rewards_are_averaged_and_batched() -> None:
    module, encoder = fake_module(alpha=0.0, batch_size=2)
    single = module.score(images_of([0], [2], [3]), None, "goal").reward
    torch.testing.assert_close(single, torch.tensor([1.0, 0.0, 2**-0.5]))
    encoder.batches.clear()
    both = module.score(images_of([0, 2], [3, 3], [2, 0]), None, "goal").reward
    torch.testing.assert_close(both, torch.tensor([0.5, 2**-0.5, 0.5]))
    assert encoder.batches == [2, 2, 2]


def test_goal_option_overrides_the_env_goal_and_goal_equal_to_baseline_fails() -> None:
    module, _ = fake_module(goal="goal", alpha=0.0)
    torch.testing.assert_close(module.score(images_of([0]), None, "ignored").reward, torch.tensor([1.0]))
    same, _ = fake_module(goal="baseline")
    with pytest.raises(ValueError, match="embed identically"):
        same.score(images_of([0]), None, "")
    nothing, _ = fake_module()
    with pytest.raises(ValueError, match="no goal prompt"):
        nothing.score(images_of([0]), None, "")
    with pytest.raises(ValueError, match=r"uint8\[B, V, H, W, 3\]"):
        nothing.score(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), None, "goal")
    with pytest.raises(ValueError, match="alpha must be in"):
        fake_module(alpha=1.5)


@pytest.mark.vlm
@pytest.mark.parametrize("kind", ["tiny_clip", "tiny_siglip"])
def test_registered_module_scores_with_a_real_tiny_model(kind: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(kind)
    module = load_modules().get("vlm_zero_shot")(model=str(folder), baseline="a robot arm", batch_size=3)
    assert isinstance(module, RewardModule) and "vlm_zero_shot" in REWARDS
    images = torch.randint(0, 256, (4, 2, 20, 24, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    r = module.score(images, None, "the gripper touches the green ball").reward
    assert r.shape == (4,) and torch.isfinite(r).all()
    # the same as scoring each view alone and averaging, whatever the batch size
    views = [module.score(images[:, v:v + 1], None, "the gripper touches the green ball").reward for v in range(2)]
    torch.testing.assert_close(r, (views[0] + views[1]) / 2, atol=1e-5, rtol=1e-5)


def test_encoder_runs_on_num_threads_and_restores_the_setting() -> None:
    module, encoder = fake_module(alpha=0.0, num_threads=1 if torch.get_num_threads() > 1 else 2)
    seen = []
    embed = encoder.embed_images
    encoder.embed_images = lambda images, batch_size: seen.append(torch.get_num_threads()) or embed(images, batch_size)
    before = torch.get_num_threads()
    module.score(images_of([0]), None, "goal")
    assert seen == [module.num_threads] and torch.get_num_threads() == before
