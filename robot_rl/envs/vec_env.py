"""The batched environment protocol every algorithm consumes.

Shapes: N = ``num_envs`` worlds, A = ``action_dim``. Observations are a dict of groups:

- ``"policy"``: float32[N, P], what the deployed policy sees;
- ``"privileged"``: float32[N, Q], what only simulation knows (object pose, contacts,
  friction, masses), for asymmetric critics;
- ``"rgb"`` (optional): ``{camera: uint8[N, H, W, 3]}``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

Obs = dict[str, Any]
"""``{"policy": float32[N,P], "privileged": float32[N,Q], "rgb"?: {camera: uint8[N,H,W,3]}}``."""


@runtime_checkable
class VecEnv(Protocol):
    """N worlds stepped together; finished worlds reset themselves inside ``step``."""

    num_envs: int
    device: torch.device
    action_dim: int
    obs_dims: dict[str, int]
    """Flat size of each float observation group, e.g. ``{"policy": 23, "privileged": 40}``."""
    action_low: torch.Tensor
    """float32[A]; actions are clipped to [action_low, action_high]."""
    action_high: torch.Tensor
    goal: str
    """The task's goal in natural language, for language-conditioned rewards."""

    def reset(self, seed: int | None = None) -> tuple[Obs, dict[str, Any]]:
        """Reset every world. The same seed gives the same initial observations."""
        ...

    def step(
        self, actions: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Advance one control step.

        Args:
            actions: float32[N, A] in [action_low, action_high] (clipped otherwise).

        Returns:
            obs (after automatic reset of finished worlds), reward float32[N],
            terminated bool[N] (a failure or goal state), truncated bool[N] (time limit),
            info with ``"reward_terms"`` {name: float32[N]} (weighted), ``"success"`` bool[N],
            ``"progress"`` float32[N] in [0, 1] and ``"final_obs"`` (the observation before the
            reset, meaningful where terminated | truncated).
        """
        ...

    def close(self) -> None: ...


def check_actions(actions: object, num_envs: int, action_dim: int) -> torch.Tensor:
    """Validate a batch of actions; raises ``ValueError`` naming the offending world.

    Args:
        actions: expected float tensor[N, A], finite.

    Returns:
        float32[N, A], the same tensor when it already is float32.
    """
    expected = f"expected a finite float tensor of shape ({num_envs}, {action_dim})"
    if not isinstance(actions, torch.Tensor):
        raise ValueError(f"actions must be a torch.Tensor, got {type(actions).__name__}; {expected}")
    if tuple(actions.shape) != (num_envs, action_dim):
        raise ValueError(f"actions have shape {tuple(actions.shape)}; {expected}")
    if not actions.is_floating_point():
        raise ValueError(f"actions have dtype {actions.dtype}; {expected}")
    bad = ~torch.isfinite(actions).all(dim=1)
    if bool(bad.any()):
        world = int(bad.nonzero()[0, 0])
        values = actions[world].tolist()
        raise ValueError(f"actions for world {world} are not finite ({values}); {expected}")
    return actions.float()
