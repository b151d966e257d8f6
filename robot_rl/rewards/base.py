"""The reward-module protocol, its registry, and what every module returns.

A reward module scores batches of camera images and/or state vectors against a goal:

    out = module.score(images=uint8[B, V, H, W, 3], state=None, goal="the cube is on the target")
    out.reward                         # float32[B]
    out.progress, out.done             # float32[B] in [0, 1] and bool[B], when the module has them

Preference-style modules also compare two observations:

    p = module.score_pairs(a_images, b_images, goal)   # float32[B]: P(b is closer to the goal than a)

Stateful modules (per-world state over an episode, e.g. ``keypoint``) may also have, each
optional, and :class:`~robot_rl.rewards.compose.RewardWrapper` uses what is there:

- ``reset(env_ids, frames=None)``: worlds ``env_ids`` start a new episode; with
  ``reset_frames`` (a :class:`FrameRequest`) set, ``frames`` (:class:`Frames`) shows them as
  they start (after the env's reset);
- ``step_frames`` (a :class:`FrameRequest`): ``score`` also gets ``frames=`` of the worlds that
  did not just finish, as they are after the step;
- ``score(..., success=bool[B])``: modules whose ``score`` takes ``success`` are given the
  task's sparse success;
- ``check_scene(task, cameras)``: refuse a task or scene the module was not made for;
- ``diagnostics() -> {name: float}``: counters logged with the training metrics.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from robot_rl.envs.backend import RGBD
from robot_rl.registry import Registry


@dataclass
class RewardOutput:
    reward: torch.Tensor
    """float32[B]: higher is closer to the goal."""
    progress: torch.Tensor | None = None
    """float32[B] in [0, 1], when the module estimates task progress."""
    done: torch.Tensor | None = None
    """bool[B], when the module predicts success."""


@dataclass(frozen=True)
class FrameRequest:
    """What a stateful module reads of worlds at their reset or after each step."""

    camera: str | None = None
    """Camera rendered as RGB-D images with its geometry (None: no images)."""
    image_size: tuple[int, int] = (128, 128)
    """(H, W) of those images."""
    sensors: tuple[str, ...] = ()
    """Simulator sensors read as they are (e.g. ``cube_pos``): privileged, only a simulator has
    them; for oracles that measure a method, never for rewards meant for a robot."""


@dataclass(frozen=True)
class Frames:
    """Worlds ``env_ids`` of an env of ``num_envs`` worlds at one instant."""

    env_ids: torch.Tensor
    """int64[n]"""
    num_envs: int
    goal: str
    state: torch.Tensor | None
    """float32[n, D]: the module's observation group (``RewardTerm.state_group``)."""
    rgbd: RGBD | None
    """The requested camera's images, depth, poses and intrinsics (n worlds)."""
    sensors: dict[str, torch.Tensor]
    """Requested sensor name -> float32[n, dim]."""


@runtime_checkable
class RewardModule(Protocol):
    """Scores observations against a goal. ``images`` are uint8[B, V, H, W, 3] (V camera
    views), ``state`` float32[B, D]; a module says which it needs."""

    uses_images: bool
    uses_state: bool

    def score(self, images: torch.Tensor | None, state: torch.Tensor | None, goal: str) -> RewardOutput: ...


@runtime_checkable
class PairwiseRewardModule(RewardModule, Protocol):
    def score_pairs(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> torch.Tensor:
        """float32[B]: probability that observation ``b`` is closer to the goal than ``a``;
        a and b are uint8[B, V, H, W, 3]."""
        ...


REWARDS: Registry[Callable[..., RewardModule]] = Registry("reward module")
"""Name -> factory ``(**options) -> RewardModule``; launch files select modules by name.
Call :func:`load_modules` first so every module of this package has registered itself."""


def load_modules() -> Registry[Callable[..., RewardModule]]:
    """Import every module directly in ``robot_rl/rewards/`` (each registers its reward modules
    with :data:`REWARDS` on import) and return the registry. Found, not listed, so a new module
    file is picked up without editing this one; heavy libraries are imported lazily inside them."""
    package = importlib.import_module(__name__.rpartition(".")[0])
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg and not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{package.__name__}.{info.name}")
    return REWARDS


def read_checkpoint(path: str, checkpoint_format: str, what: str) -> dict:
    """A reward module's file written by its ``save`` (a dict whose ``format`` is
    ``checkpoint_format``); ValueError naming the file and what it should have been otherwise."""
    from robot_rl.utils.files import read_checked

    return read_checked(path, checkpoint_format, f"{what} checkpoint")


def check_images(images: torch.Tensor | None, module: str) -> torch.Tensor:
    """Validate a batch of images uint8[B, V, H, W, 3]; returns it."""
    if images is None:
        raise ValueError(f"{module} scores camera images; pass images=uint8[B, V, H, W, 3]")
    if images.dtype != torch.uint8 or images.ndim != 5 or images.shape[-1] != 3:
        raise ValueError(f"{module}: images must be uint8[B, V, H, W, 3], got {images.dtype}{list(images.shape)}")
    return images


def check_episodes(episodes, module: str) -> list[torch.Tensor]:
    """Validate episodes, each uint8[T, V, H, W, 3] or single-view uint8[T, H, W, 3]; returns
    them as uint8[T, V, H, W, 3] tensors."""
    out = []
    for episode in episodes:
        episode = torch.as_tensor(episode)
        out.append(check_images(episode[:, None] if episode.ndim == 4 else episode, module))
    if not out:
        raise ValueError(f"{module}: fit needs at least one episode")
    return out
