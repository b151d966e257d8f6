from __future__ import annotations

import pytest
import torch

from robot_rl.envs import check_actions
from robot_rl.registry import Registry, UnknownNameError


def test_check_actions_accepts_valid_batch() -> None:
    actions = torch.zeros(4, 3, dtype=torch.float64)
    out = check_actions(actions, 4, 3)
    assert out.dtype == torch.float32 and out.shape == (4, 3)


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (torch.zeros(4, 2), r"shape \(4, 2\); expected a finite float tensor of shape \(4, 3\)"),
        (torch.zeros(3), r"shape \(3,\)"),
        (torch.zeros(4, 3, dtype=torch.int64), "dtype torch.int64"),
        ([[0.0] * 3] * 4, "must be a torch.Tensor, got list"),
    ],
)
def test_check_actions_rejects_bad_shape_and_dtype(actions, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_actions(actions, 4, 3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_actions_names_the_world_with_non_finite_values(bad: float) -> None:
    actions = torch.zeros(5, 3)
    actions[3, 1] = bad
    with pytest.raises(ValueError, match=r"world 3 are not finite.*shape \(5, 3\)"):
        check_actions(actions, 5, 3)


def test_registry_lists_registered_names_on_unknown() -> None:
    registry: Registry[type] = Registry("widget")

    @registry.register("b")
    class B: ...

    @registry.register("a")
    class A: ...

    assert registry.get("a") is A and registry.names() == ["a", "b"]
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; registered widgets: a, b"):
        registry.get("c")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(B)
