"""The training launch file: ``launch/train/<name>.yaml`` -> :class:`TrainConfig`.

    env:    {task: panda_reach, num_envs: 256}
    algo:   {lr: 1.0e-3, num_steps: 24}
    budget: {env_steps: 3_000_000}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from robot_rl.configs.loading import ConfigError, bounded
from robot_rl.envs.task import Randomization


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
class PushConfig:
    """Domain-randomisation pushes: every ``interval_steps`` control steps each world draws a
    new force, uniform in ±``max_force`` newtons per axis, held on ``body`` until the next draw
    (legged_gym/HIMLoco's baseline: ±30 N resampled every 8 steps)."""

    max_force: float = bounded(0.0, 0.0)
    """Largest force per axis, newtons; 0 turns pushes off."""
    interval_steps: int = bounded(8, 1)
    body: str = ""
    """Body pushed; empty: the task's main free body (``trunk`` or ``cube``)."""


@dataclass(frozen=True)
class HInfConfig:
    """H-infinity disturber (Long et al., *Learning H-Infinity Locomotion Control*): a learned
    policy applies a bounded force to ``body`` to maximise cost − η·intensity; the actor keeps
    E[Σγᵗcₜ] ≤ η·E[Σγᵗ‖dₜ‖] with a multiplier λ updated by projected dual ascent."""

    enabled: bool = False
    body: str = ""
    """Body the disturber pushes; empty: the task's main free body (``trunk`` or ``cube``)."""
    max_force: float = bounded(30.0, 0.0, low_open=True)
    """Bound on the force's norm, newtons; intensity ‖dₜ‖ is measured as a fraction of it."""
    eta: float = bounded(1.0, 0.0)
    """η: cost the actor may concede per unit of force intensity."""
    oracle_mode: Literal["absolute", "relative"] = "absolute"
    """``absolute``: the oracle of each term is the fixed value in ``oracle`` and the cost sums
    the gaps max(0, oracle − term). ``relative``: the oracle of each term in ``cost_terms`` is
    the policy's own undisturbed performance, the mean of the term (and of the termination rate)
    over ``reference_fraction`` of the worlds that the disturber never pushes, and the cost sums
    the signed gaps oracle − term, so an undisturbed policy has zero expected cost."""
    oracle: dict[str, float] = field(default_factory=dict)
    """``absolute`` mode: reward term -> its oracle (best achievable, weighted) value."""
    cost_terms: tuple[str, ...] = ()
    """``relative`` mode: the reward terms the cost counts (their oracles are measured)."""
    reference_fraction: float = bounded(0.25, 0.0, 1.0, low_open=True)
    """``relative`` mode: share of the worlds (the first ones) the disturber never pushes; their
    mean reward terms are the oracle."""
    oracle_momentum: float = bounded(0.9, 0.0, 1.0)
    """``relative`` mode: the oracle used for the per-step costs of a rollout is an exponential
    average of the reference worlds' means over past rollouts with this momentum (the constraint
    itself uses the current rollout's means)."""
    termination_cost: float = bounded(0.0, 0.0)
    """Cost added at a termination (a fall), so that causing one pays off for the disturber
    (``relative`` mode: minus the reference worlds' termination rate)."""
    lambda_lr: float = bounded(0.05, 0.0)
    """Step of the dual ascent λ ← min(max_lambda, max(0, λ + lambda_lr · violation)), once per iteration."""
    lambda_init: float = bounded(0.0, 0.0)
    max_lambda: float | None = bounded(None, 0.0, low_open=True)
    """Upper bound on λ, so that the reward keeps a weight of at least 1/(1 + max_lambda) in
    the actor's advantages; None: unbounded."""
    start_iteration: int = bounded(0, 0)
    """Iterations of plain training before the disturber acts."""
    ramp_iterations: int = bounded(0, 0)
    """After ``start_iteration``, the force bound grows linearly to ``max_force`` over this many."""
    lr: float = bounded(3e-4, 0.0, low_open=True)
    """Learning rate of the disturber's PPO and of the cost critic."""
    hidden: tuple[int, ...] = (128, 64)
    """Hidden layers of the disturber's actor and critic and of the cost critic."""
    init_noise_std: float = bounded(0.5, 0.0, low_open=True)
    entropy_coef: float = bounded(0.0, 0.0)


@dataclass(frozen=True)
class PrivilegedConfig:
    """Privileged-action curriculum (Mao et al., *Learning Long-Horizon Robot Manipulation
    Skills via Privileged Action*): in simulation the policy gets extra actions — a virtual
    force (and torque) on ``body`` — and contacts of ``relax_bodies`` with ``relax_geom`` may
    sink ``relax_depth`` metres, all scaled by s(k) = 1 − k/levels; k advances when the success
    rate at the current level reaches ``success_threshold``. Exported policies drop them."""

    enabled: bool = False
    body: str = "cube"
    max_force: float = bounded(2.0, 0.0)
    """Largest virtual force per axis at s = 1, newtons (0.98 N holds the 0.1 kg cube up)."""
    max_torque: float = bounded(0.0, 0.0)
    """Largest virtual torque per axis at s = 1, N·m; 0: force actions only (3 instead of 6)."""
    relax_geom: str = "table"
    relax_bodies: tuple[str, ...] = ()
    """Robot bodies whose contacts with ``relax_geom`` are relaxed (native backend only)."""
    relax_depth: float = bounded(0.0, 0.0)
    """How far (metres) relaxed contacts may penetrate at s = 1 before they push back (the
    contact pairs' margin becomes −s·relax_depth)."""
    gate_sensors: tuple[str, ...] = ()
    """Two position sensors, e.g. ``[ee_pos, cube_pos]``: the virtual wrench acts only in worlds
    where they are at most ``gate_radius`` apart, so it helps the robot move the object instead
    of moving it alone. Empty: it acts everywhere."""
    gate_radius: float = bounded(0.05, 0.0, low_open=True)
    """Metres; see ``gate_sensors``."""
    levels: int = bounded(4, 1)
    """Curriculum levels; s goes 1, 1 − 1/levels, ..., 0 (unless ``schedule`` is given)."""
    schedule: tuple[float, ...] = ()
    """The scale s of each level, decreasing to 0, e.g. ``[1.0, 0.5, 0.25, 0.12, 0.06, 0.0]``
    (finer steps where the virtual force stops doing the task alone); replaces ``levels``.
    Empty: 1 − k/levels."""
    success_threshold: float = bounded(0.6, 0.0, 1.0)
    min_episodes: int = bounded(256, 1)
    """Episodes finished at a level before it may advance; the success rate is that of the
    last ``min_episodes`` episodes."""


@dataclass(frozen=True)
class RobustConfig:
    """Robustness for sim-to-real (``robot_rl.disturbers``); everything is off by default."""

    randomization: Randomization | None = None
    """Per-world mass/friction/gain scales, observation noise and action latency, redrawn at
    every reset (``robot_rl.envs.Randomization``); replaces the task's own."""
    push: PushConfig = field(default_factory=PushConfig)
    hinf: HInfConfig = field(default_factory=HInfConfig)
    privileged: PrivilegedConfig = field(default_factory=PrivilegedConfig)

    @property
    def active(self) -> bool:
        """Whether training needs the disturber hooks (randomisation lives in the env)."""
        return self.push.max_force > 0 or self.hinf.enabled or self.privileged.enabled


@dataclass(frozen=True)
class TrainConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    algo: PPOConfig = field(default_factory=PPOConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0
    robust: RobustConfig = field(default_factory=RobustConfig)
    """Domain randomisation, pushes, H∞ disturber, privileged-action curriculum (all off by default)."""

    def check_config(self) -> None:
        """Rules between sections, run by the loader (:func:`robot_rl.configs.loading.from_dict`)."""
        batch = self.algo.num_steps * self.env.num_envs
        if self.algo.num_minibatches > batch:
            # Each mini-batch would hold batch // num_minibatches = 0 samples: a loss of NaN.
            raise ConfigError(
                f"algo.num_minibatches: must be at most the batch of algo.num_steps x env.num_envs = "
                f"{self.algo.num_steps} x {self.env.num_envs} = {batch}, got {self.algo.num_minibatches}; "
                "use fewer mini-batches or more steps or worlds")
