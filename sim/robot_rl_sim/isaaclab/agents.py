"""rsl_rl runner configurations for Isaac Lab's training scripts (``rsl_rl_cfg_entry_point``),
taken from our launch file of each task (``launch/train/<task>.yaml``): rollout length,
network sizes, learning rate, entropy bonus and the PPO constants shared with
:class:`robot_rl.configs.train.PPOConfig`; the iteration count covers the launch file's budget
of environment steps at its number of worlds.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, RslRlOnPolicyRunnerCfg, RslRlPpoAlgorithmCfg

from robot_rl.configs.loading import load
from robot_rl.configs.train import PPOConfig, TrainConfig
from robot_rl.envs.task import TASKS

LAUNCH_DIR = Path(__file__).resolve().parents[3] / "launch" / "train"
"""Our training launch files (source checkouts and editable installs)."""


def runner_cfg(task: str) -> RslRlOnPolicyRunnerCfg:
    """The runner configuration of ``task``; PPO defaults where it has no launch file."""
    path = LAUNCH_DIR / f"{task}.yaml"
    train = load(TrainConfig, path) if path.is_file() else TrainConfig()
    algo: PPOConfig = train.algo
    per_iteration = train.env.num_envs * algo.num_steps
    return RslRlOnPolicyRunnerCfg(
        num_steps_per_env=algo.num_steps,
        max_iterations=max(1, train.budget.env_steps // per_iteration),
        save_interval=train.log.checkpoint_every,
        experiment_name=f"robot_rl_{task}",
        obs_groups={"actor": ["policy"], "critic": ["critic"]},
        actor=RslRlMLPModelCfg(hidden_dims=list(algo.actor_hidden), activation=algo.activation,
                               obs_normalization=algo.normalize_obs,
                               distribution_cfg=RslRlMLPModelCfg.GaussianDistributionCfg(
                                   init_std=algo.init_noise_std)),
        critic=RslRlMLPModelCfg(hidden_dims=list(algo.critic_hidden), activation=algo.activation,
                                obs_normalization=algo.normalize_obs),
        algorithm=RslRlPpoAlgorithmCfg(
            value_loss_coef=algo.value_coef, use_clipped_value_loss=algo.clip_value, clip_param=algo.clip,
            entropy_coef=algo.entropy_coef, num_learning_epochs=algo.num_epochs,
            num_mini_batches=algo.num_minibatches, learning_rate=algo.lr, schedule=algo.schedule,
            gamma=algo.gamma, lam=algo.lam, desired_kl=algo.desired_kl, max_grad_norm=algo.max_grad_norm),
        seed=train.seed,
    )


def _define() -> None:
    """``PandaReachPPORunnerCfg()`` etc., the ``rsl_rl_cfg_entry_point`` of each registered id."""
    for task in TASKS.names():
        name = "".join(part.capitalize() for part in task.split("_")) + "PPORunnerCfg"
        globals()[name] = partial(runner_cfg, task)


_define()
