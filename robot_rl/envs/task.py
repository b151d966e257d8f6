"""A task: one MJCF scene plus batched torch functions for observations, rewards and success.

Tasks read state through a :class:`~robot_rl.envs.backend.Backend` and so run unchanged on
every backend. Reward terms are named pure functions of the state returning float32[N]; the
environment weights them with ``config.reward_weights`` and logs each one.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch

from robot_rl.envs.backend import Backend, Layout
from robot_rl.registry import Registry


@dataclass(frozen=True)
class Randomization:
    """Per-world randomisation, redrawn whenever a world resets. Defaults change nothing."""

    mass_scale: tuple[float, float] = (1.0, 1.0)
    """Uniform range of the factor on the masses of the task's ``randomized_bodies``."""
    friction_scale: tuple[float, float] = (1.0, 1.0)
    """Uniform range of the factor on every geom's sliding friction."""
    gain_scale: tuple[float, float] = (1.0, 1.0)
    """Uniform range of the factor on every position actuator's stiffness."""
    obs_noise_std: float = 0.0
    """Standard deviation of Gaussian noise added to the ``"policy"`` observation group."""
    max_action_delay: int = 0
    """Each world applies the action from d control steps ago, d drawn from [0, this]."""

    @property
    def changes_dynamics(self) -> bool:
        return any(r != (1.0, 1.0) for r in (self.mass_scale, self.friction_scale, self.gain_scale))


@dataclass(frozen=True)
class TaskConfig:
    """Fields every task has; tasks subclass this to add reset ranges and thresholds."""

    goal: str = ""
    """What success looks like, in words (for language-conditioned rewards)."""
    reward_weights: Mapping[str, float] = field(default_factory=dict)
    """Weight of each named reward term; the step reward is the weighted sum."""
    control_dt: float = 0.02
    """Seconds between policy actions."""
    episode_length_s: float = 5.0
    """Worlds are truncated after this many seconds."""
    randomization: Randomization = Randomization()


class ResetState(NamedTuple):
    """Initial state for n worlds being reset."""

    qpos: torch.Tensor
    """float32[n, nq]"""
    qvel: torch.Tensor
    """float32[n, nv]"""
    mocap_pos: torch.Tensor | None = None
    """float32[n, nmocap, 3], or None to keep the current mocap positions."""


class Task(ABC):
    """Base class of every task. Subclasses set the class attributes and the functions below."""

    scene: ClassVar[str]
    """MJCF file relative to the ``models/`` folder."""
    cameras: ClassVar[tuple[str, ...]]
    """Cameras in the scene that make sense to look through; the first is the default."""
    action_dim: ClassVar[int]
    config_class: ClassVar[type[TaskConfig]]
    randomized_bodies: ClassVar[tuple[str, ...]] = ()
    """Bodies whose masses ``Randomization.mass_scale`` scales (all bodies when empty)."""

    def __init__(self, config: TaskConfig, num_envs: int, device: torch.device, layout: Layout) -> None:
        unknown = set(config.reward_weights) - set(self.reward_term_names())
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown reward terms {sorted(unknown)}; "
                f"valid terms: {', '.join(self.reward_term_names())}"
            )
        self.config = config
        self.num_envs = num_envs
        self.device = device
        self.layout = layout
        self.actions = torch.zeros(num_envs, self.action_dim, device=device)
        """float32[N, A] the action applied this step."""
        self.prev_actions = torch.zeros_like(self.actions)
        self.dynamics = torch.ones(num_envs, 3, device=device)
        """float32[N, 3] this world's (mass, friction, gain) scales, for privileged observations."""

    @property
    def max_episode_steps(self) -> int:
        return max(1, math.ceil(self.config.episode_length_s / self.config.control_dt - 1e-9))

    @classmethod
    def reward_term_names(cls) -> tuple[str, ...]:
        """Names of the reward terms ``reward_terms`` returns (keys of ``reward_weights``)."""
        return tuple(cls.config_class().reward_weights)

    @abstractmethod
    def reset(self, sim: Backend, env_ids: torch.Tensor, generator: torch.Generator) -> ResetState:
        """Draw initial states for worlds ``env_ids`` int64[n] and reset per-world task buffers."""

    def after_reset(self, sim: Backend, env_ids: torch.Tensor) -> None:
        """Called once the reset state is in the simulator (sensors describe it)."""

    @abstractmethod
    def action_to_ctrl(self, actions: torch.Tensor, sim: Backend) -> torch.Tensor:
        """Map actions float32[N, A] in [-1, 1] to actuator controls float32[N, nu]."""

    @abstractmethod
    def observe(self, sim: Backend) -> dict[str, torch.Tensor]:
        """``{"policy": float32[N, P], "privileged": float32[N, Q]}``."""

    @abstractmethod
    def reward_terms(self, sim: Backend) -> dict[str, torch.Tensor]:
        """Unweighted reward terms, each float32[N], keyed as in ``reward_weights``."""

    @abstractmethod
    def success(self, sim: Backend) -> torch.Tensor:
        """bool[N]: the goal is reached in this state."""

    @abstractmethod
    def progress(self, sim: Backend) -> torch.Tensor:
        """float32[N] in [0, 1]: ground-truth progress towards the goal (for evaluating rewards)."""

    def terminated(self, sim: Backend) -> torch.Tensor:
        """bool[N]: the episode cannot continue (a fall, an object off the table)."""
        return torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)


TASKS: Registry[type[Task]] = Registry("task")


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator: register a task under ``name`` (also stored as ``cls.name``)."""

    def add(cls: type[Task]) -> type[Task]:
        cls.name = name
        return TASKS.register(name)(cls)

    return add


def uniform(low: torch.Tensor | float, high: torch.Tensor | float, shape: tuple[int, ...],
            generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """float32[shape] drawn uniformly from [low, high) (broadcast over the last dimensions)."""
    u = torch.rand(shape, generator=generator, device=device)
    low = torch.as_tensor(low, dtype=torch.float32, device=device)
    high = torch.as_tensor(high, dtype=torch.float32, device=device)
    return low + (high - low) * u
