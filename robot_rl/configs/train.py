"""The training launch file: ``launch/train/<name>.yaml`` -> :class:`TrainConfig`.

    env:    {task: panda_reach, num_envs: 256}
    algo:   {lr: 1.0e-3, num_steps: 24}
    budget: {env_steps: 3_000_000}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from robot_rl.configs.loading import bounded


@dataclass(frozen=True)
class EnvConfig:
    task: str = "panda_reach"
    """A registered task (``robot-rl tasks``)."""
    backend: str = "native"
    """``native`` (MuJoCo on the CPU) or ``warp`` (MuJoCo Warp, GPU when present)."""
    device: str | None = None
    """Torch device of the warp backend; the native backend is always on the CPU."""
    num_envs: int = bounded(256, 1)
    """Worlds stepped together (per process under torchrun)."""
    task_overrides: dict[str, Any] = field(default_factory=dict)
    """Fields of the task's config to replace, e.g. ``{episode_length_s: 4.0}``."""
    image_antialias: bool = True
    """Multisample the camera images reward modules score; false renders small images ~2.6x
    faster (panda_reach at 64x64) with jagged edges."""


@dataclass(frozen=True)
class OnlineLearningConfig:
    """How a preference reward keeps learning during training (``rewards.modules[i].online``)."""

    labeller: Literal["oracle", "vlm", "http"] = "oracle"
    """Who judges pairs: ``oracle`` (the simulator's true progress, with ``flip_prob`` mistakes;
    for measuring the method), ``vlm`` (a local image-text-to-text model) or ``http`` (an
    OpenAI-compatible server)."""
    labeller_options: dict[str, Any] = field(default_factory=dict)
    """Fields of the labeller's config: ``oracle``: ``flip_prob``, ``tie_threshold``, ``seed``;
    ``vlm``: :class:`~robot_rl.rewards.labellers.vlm.VLMLabellerConfig`; ``http``:
    :class:`~robot_rl.rewards.labellers.http.HTTPLabellerConfig`."""
    first_step: int = bounded(5_000, 0)
    """Env steps (summed over worlds) before the first query."""
    every: int = bounded(5_000, 1)
    """Env steps between queries."""
    per_update: int = bounded(100, 1)
    """Pairs asked at each query."""
    budget: int = bounded(4_000, 0)
    """Pairs asked over the whole run."""
    candidates: int = bounded(10, 1)
    """Candidate pairs drawn per pair asked; ``selection`` keeps the best ``per_update``."""
    selection: Literal["uniform", "disagreement"] = "disagreement"
    pairs: Literal["any", "same_episode"] = "any"
    """Draw the two observations of a candidate pair from anywhere in the pool, or from one episode."""
    pool_size: int = bounded(16_384, 2)
    """Observations kept (the most recent ones)."""
    epochs_per_update: int = bounded(3, 1)
    """Training passes after each query."""
    pairs_per_epoch: int | None = bounded(None, 1)
    """Labelled pairs visited per pass (drawn at random); None: all of them, so updates grow
    slower as labels accumulate."""


@dataclass(frozen=True)
class RewardModuleConfig:
    """A reward module (``robot_rl.rewards``) whose weighted reward joins the task reward."""

    name: str
    """A registered reward module, e.g. ``vlm_zero_shot``."""
    weight: float = 1.0
    cameras: tuple[str, ...] = ()
    """Cameras whose images the module scores, as views; empty: the task's first camera."""
    image_size: tuple[int, int] = (224, 224)
    """(H, W) the cameras render at. CLIP/SigLIP read 224x224, so rendering at that size spares
    upsampling blur; every image module of a run must use the same size (small CNNs: 84x84)."""
    normalize: bool = False
    """Normalise this module's reward by its running mean and std before weighting."""
    gate: Literal["none", "until_success"] = "none"
    """``until_success``: use the module's reward only while the task's sparse success is false."""
    state_group: str = "policy"
    """Observation group given to modules that score state vectors."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the module's factory, e.g. ``{model: PATH, alpha: 0.5, baseline: [...]}``."""
    online: OnlineLearningConfig | None = None
    """Keep learning the module (``preference`` only) from labels on the policy's own observations
    during training; None: the module stays as loaded."""


@dataclass(frozen=True)
class RewardConfig:
    weights: dict[str, float] = field(default_factory=dict)
    """Weights of the task's named reward terms, replacing the task's defaults where given."""
    task_weight: float = 1.0
    """Factor on the task's reward; 0 leaves only the reward modules."""
    modules: tuple[RewardModuleConfig, ...] = ()
    """Reward modules added to the task reward (``robot_rl.rewards.compose.RewardWrapper``)."""


@dataclass(frozen=True)
class PPOConfig:
    """Defaults follow rsl_rl's PPO (5 epochs, 4 mini-batches, clip 0.2, adaptive-KL lr)."""

    num_steps: int = bounded(24, 1)
    """Steps per world collected before each update."""
    num_epochs: int = bounded(5, 1)
    num_minibatches: int = bounded(4, 1)
    lr: float = bounded(1e-3, 0.0, low_open=True)
    schedule: Literal["adaptive", "fixed"] = "adaptive"
    """``adaptive``: divide lr by 1.5 when KL > 2·desired_kl, multiply when KL < desired_kl/2."""
    desired_kl: float = bounded(0.01, 0.0, low_open=True)
    lr_min: float = bounded(1e-5, 0.0, low_open=True)
    lr_max: float = bounded(1e-2, 0.0, low_open=True)
    gamma: float = bounded(0.99, 0.0, 1.0)
    lam: float = bounded(0.95, 0.0, 1.0)
    clip: float = bounded(0.2, 0.0, low_open=True)
    value_coef: float = bounded(1.0, 0.0)
    clip_value: bool = True
    """Clip the value update to ``clip`` around the old value, as in the PPO paper's code."""
    entropy_coef: float = bounded(0.01, 0.0)
    max_grad_norm: float = bounded(1.0, 0.0, low_open=True)
    init_noise_std: float = bounded(1.0, 0.0, low_open=True)
    actor_hidden: tuple[int, ...] = (256, 128, 64)
    critic_hidden: tuple[int, ...] = (256, 128, 64)
    activation: Literal["elu", "relu", "tanh"] = "elu"
    normalize_obs: bool = True
    """Running mean/std normalisation of both observation groups (stored with the policy)."""
    actor_obs: str = "policy"
    """Observation group the actor reads (what the deployed robot will have)."""
    critic_obs: str = "privileged"
    """Observation group the critic reads (simulation-only information allowed)."""


@dataclass(frozen=True)
class BudgetConfig:
    env_steps: int = bounded(2_000_000, 1)
    """Stop after this many environment steps (summed over worlds and processes)."""
    minutes: float | None = bounded(None, 0.0, low_open=True)
    """Also stop after this much wall-clock time."""


@dataclass(frozen=True)
class LogConfig:
    root: str = "runs"
    """Runs go to ``<root>/<task>/<timestamp>/``."""
    checkpoint_every: int = bounded(50, 1)
    """Iterations between checkpoints (one is always written at the end)."""
    eval_episodes: int = bounded(32, 0)
    """Episodes of the final evaluation written to ``eval.json`` (0 skips it)."""
    video: bool = True
    """Record ``rollout.mp4`` of the trained policy."""
    video_seconds: float = bounded(8.0, 0.0, low_open=True)
    tensorboard: bool = True
    progress_bar: bool = True


@dataclass(frozen=True)
class TrainConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    algo: PPOConfig = field(default_factory=PPOConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0
