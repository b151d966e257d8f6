"""The imputed reward: regression on labelled frames, held-out epoch choice, persistence, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robot_rl.rewards.base import REWARDS, load_modules
from robot_rl.rewards.imputed import ImputedReward


def labelled_states(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """States float[n, 6] and a value that depends on two of them nonlinearly, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen)
    return x, torch.tanh(x[:, 0]) - 0.5 * x[:, 1].abs() + 0.05 * torch.randn(n, generator=gen)


def test_imputed_is_registered_and_predicts_values_of_unlabelled_states() -> None:
    load_modules()
    reward = REWARDS.get("imputed")(inputs="state", state_dim=6, max_epochs=200, patience=20)
    assert isinstance(reward, ImputedReward) and reward.uses_state and not reward.uses_images
    x, y = labelled_states(400)
    stats = reward.fit(x, y)
    assert stats["frames"] == 400 and 1 <= stats["best_epoch"] <= stats["epochs"] <= 200
    fresh, truth = labelled_states(500, seed=1)
    predicted = reward.score(None, fresh, "").reward
    assert predicted.shape == (500,)
    assert torch.corrcoef(torch.stack([predicted, truth]))[0, 1] > 0.9
    assert (predicted - truth).pow(2).mean() < 0.1 * truth.var()  # magnitudes, not only the order


def test_held_out_frames_choose_each_members_epoch() -> None:
    x, y = labelled_states(120)
    y = y + torch.randn(120, generator=torch.Generator().manual_seed(5))  # mostly noise: later epochs overfit
    reward = ImputedReward(inputs="state", state_dim=6, hidden=128, learning_rate=1e-2, weight_decay=0.0,
                           max_epochs=300, validation_fraction=0.25, patience=10, seed=0)
    stats = reward.fit(x, y)
    assert stats["epochs"] < 300  # stopped by the held-out error, not the epoch cap
    assert stats["train_mse"] < stats["held_out_mse"]
    # the kept members are the best held-out ones: their error there is the reported one
    held = torch.randperm(120, generator=torch.Generator().manual_seed(1))[:30]
    with torch.no_grad():
        errors = [float((net(x[held]) - y[held]).pow(2).mean()) for net in reward.ensemble]
    assert sum(errors) / len(errors) == pytest.approx(stats["held_out_mse"], rel=1e-4)


def test_an_image_model_fits_and_a_saved_model_scores_the_same(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 16, 16, 3), generator=gen, dtype=torch.uint8)
    values = images.float().mean((1, 2, 3, 4)) / 255.0
    reward = ImputedReward(inputs="images", hidden=8, ensemble_size=2, max_epochs=5)
    reward.fit(images, values)
    path = tmp_path / "imputed.pt"
    reward.save(path)
    loaded = ImputedReward(checkpoint=str(path))
    assert (loaded.config.inputs, loaded.config.hidden, loaded.config.ensemble_size) == ("images", 8, 2)
    torch.testing.assert_close(loaded.score(images).reward, reward.score(images).reward)
    with pytest.raises(ValueError, match="not an imputed-reward checkpoint"):
        torch.save({"format": "something else"}, tmp_path / "other.pt")
        ImputedReward(checkpoint=str(tmp_path / "other.pt"))


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="inputs 'state' needs state_dim"):
        ImputedReward(inputs="state")
    reward = ImputedReward(inputs="state", state_dim=6, max_epochs=1)
    with pytest.raises(ValueError, match=r"expected states float\[B, 6\], got \(4, 5\)"):
        reward.fit(torch.zeros(4, 5), torch.zeros(4))
    with pytest.raises(ValueError, match="4 frames and 3 values"):
        reward.fit(torch.zeros(4, 6), torch.zeros(3))
    with pytest.raises(ValueError, match="NaN or infinity"):
        reward.fit(torch.zeros(4, 6), torch.tensor([0.0, 1.0, float("nan"), 2.0]))
    with pytest.raises(ValueError, match="reads states"):
        reward.score(None, None, "")
