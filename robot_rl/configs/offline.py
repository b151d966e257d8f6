"""Offline training and fine-tuning launch files: ``launch/offline/<name>.yaml`` -> :class:`OfflineConfig`.

    dataset: runs/data/panda_push_mixed
    algo: iql
    iql: {expectile: 0.7, temperature: 3.0}
    budget: {updates: 20000}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from robot_rl.configs.loading import bounded


@dataclass(frozen=True)
class NetConfig:
    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of every actor, critic and value MLP."""
    lr: float = bounded(3e-4, 0.0, low_open=True)
    batch_size: int = bounded(256, 1)
    normalize_obs: bool = True
    """Normalise observations by the dataset's mean and std (stored with the policy)."""


@dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning: mean-squared error to the dataset's actions."""

    success_only: bool = False
    """Clone only episodes that end in success (filtered BC)."""


@dataclass(frozen=True)
class IQLConfig:
    """Implicit Q-learning (Kostrikov et al.)."""

    expectile: float = bounded(0.7, 0.0, 1.0)
    """τ of the expectile regression of V towards Q."""
    temperature: float = bounded(3.0, 0.0)
    """β of the advantage weights exp(β·(Q - V))."""
    max_weight: float = bounded(100.0, 0.0, low_open=True)
    """Advantage weights are clipped at this."""
    gamma: float = bounded(0.99, 0.0, 1.0)
    tau: float = bounded(0.005, 0.0, 1.0)
    """Polyak rate of the target Q."""


@dataclass(frozen=True)
class TD3BCConfig:
    """TD3+BC (Fujimoto & Gu): TD3 with a behaviour-cloning term, λ = α / mean|Q|."""

    alpha: float = bounded(2.5, 0.0)
    gamma: float = bounded(0.99, 0.0, 1.0)
    tau: float = bounded(0.005, 0.0, 1.0)
    policy_noise: float = bounded(0.2, 0.0)
    noise_clip: float = bounded(0.5, 0.0)
    policy_delay: int = bounded(2, 1)


@dataclass(frozen=True)
class SACConfig:
    """SAC with RLPD's options (Ball et al.); ``ensemble: 10, subset: 2, layer_norm: true,
    utd: 20, demo_fraction: 0.5`` is RLPD, ``ensemble: 2, subset: 2, utd: 1`` plain SAC."""

    ensemble: int = bounded(10, 1)
    """Q-functions in the critic ensemble."""
    subset: int = bounded(2, 1)
    """The target is the minimum over a random subset of this many members."""
    layer_norm: bool = True
    utd: int = bounded(20, 1)
    """Critic updates per environment step (a step of N worlds is N environment steps)."""
    demo_fraction: float = bounded(0.5, 0.0, 1.0)
    """Share of every batch drawn from the demo buffer (symmetric sampling: 0.5)."""
    gamma: float = bounded(0.99, 0.0, 1.0)
    tau: float = bounded(0.005, 0.0, 1.0)
    init_temperature: float = bounded(0.1, 0.0, low_open=True)
    backup_entropy: bool = True
    """Whether the critic's target carries the entropy bonus (−α·log π of the next action); RLPD
    leaves it out on sparse-reward tasks."""
    target_entropy: float | None = None
    """Default: -action_dim / 2."""
    n_step: int = bounded(1, 1)
    """Transitions span this many environment steps (n-step returns: the discounted sum of n
    rewards, bootstrapped n steps on; fewer where the episode ends), online and demo alike. A
    transition is stored once its n steps are in, so a checkpoint leaves out each world's last
    n - 1 steps (a resumed run starts new episodes)."""
    noise_beta: float = bounded(0.0, 0.0)
    """Exploration noise when acting: power ∝ 1/f^β along each episode (0: SAC's independent
    draws, 1: pink noise, 2: red; :mod:`robot_rl.algorithms.noise`). Updates are unchanged."""
    buffer_size: int = bounded(1_000_000, 1)
    random_steps: int = bounded(1000, 0)
    """Environment steps with uniformly random actions before the policy acts (0 with demos is fine)."""
    demo_episodes: int | None = bounded(None, 0)
    """Demos: the first this many episodes of the dataset that end in success (None: every episode)."""
    demo_after_success: int | None = bounded(None, 0)
    """Frames of each demo kept after its first success (None: the whole episode). HIL-SERL's
    demos end where success is detected; an expert that then holds still until the time limit
    fills most of the demo buffer with holding (needs the dataset's ``next.success`` column)."""
    warmup: int = bounded(1000, 0)
    """Transitions collected online before the first update."""
    processes: Literal["one", "actor_learner"] = "one"
    """``actor_learner``: an actor process steps the worlds and streams transitions to this
    (learner) process over torch.multiprocessing queues; the learner sends weights back."""
    weight_sync: int = bounded(20, 1)
    """Actor-learner: vector steps of the actor between weight updates from the learner."""


@dataclass(frozen=True)
class EvalConfig:
    episodes: int = bounded(32, 0)
    """Simulation episodes of the final evaluation (``eval.json``; 0 skips it)."""
    every: int = bounded(5000, 1)
    """Updates (offline) or env steps (online) between intermediate evaluations logged to metrics.csv."""
    interim_episodes: int = bounded(16, 0)
    """Episodes of each intermediate evaluation (0 turns them off)."""
    video: bool = False
    """Record ``rollout.mp4`` of the trained policy."""
    video_seconds: float = bounded(5.0, 0.0, low_open=True)


@dataclass(frozen=True)
class OfflineBudget:
    updates: int = bounded(20_000, 1)
    """Gradient updates of offline training."""
    env_steps: int = bounded(50_000, 0)
    """Environment steps of online fine-tuning (``robot-rl finetune``)."""
    minutes: float | None = bounded(None, 0.0, low_open=True)
    """Also stop after this much wall-clock time."""


@dataclass(frozen=True)
class OfflineConfig:
    dataset: str | None = None
    """A LeRobot v3 dataset recorded by ``robot-rl record`` (or the ROS 2 recorder)."""
    task: str | None = None
    """Simulation task to evaluate in; default: the task the dataset was recorded in."""
    task_overrides: dict[str, Any] | None = None
    """Fields of the task's config (e.g. ``action_space: ee``); default: those the dataset was
    recorded with (none without a dataset)."""
    algo: Literal["bc", "iql", "td3bc", "sac"] = "iql"
    obs: str = "observation.policy"
    """Observation column the policy reads."""
    reward: str = "next.reward"
    """Reward column (e.g. one written by ``robot-rl label``)."""
    progress_filter: str | None = None
    """A progress column: drop transitions whose progress does not increase (GR-RL)."""
    net: NetConfig = field(default_factory=NetConfig)
    bc: BCConfig = field(default_factory=BCConfig)
    iql: IQLConfig = field(default_factory=IQLConfig)
    td3bc: TD3BCConfig = field(default_factory=TD3BCConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    budget: OfflineBudget = field(default_factory=OfflineBudget)
    eval: EvalConfig = field(default_factory=EvalConfig)
    num_envs: int = bounded(8, 1)
    """Worlds stepped together during fine-tuning."""
    threads: int = bounded(1, 1)
    """Torch threads for the updates. One suits small MLPs on a few shared cores; RLPD's
    ten-critic ensemble gains from more on idle cores (``benchmarks/sac_update.py`` prints the
    ratio)."""
    checkpoint_every: int = bounded(10_000, 0)
    """Fine-tuning: env steps between checkpoints (the SAC state, both replay buffers, the
    counters), from which ``robot-rl finetune --resume RUN_DIR`` continues; 0: only at the end."""
    root: str = "runs"
    """Runs go to ``<root>/<task>/<timestamp>/``."""
    progress_bar: bool = True
    seed: int = 0
