"""The training loop: collect rollouts, update PPO, log, checkpoint, evaluate, film.

    trainer = Trainer(load(TrainConfig, "launch/train/panda_reach.yaml"))
    summary = trainer.train()        # writes runs/panda_reach/<timestamp>/
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from robot_rl.algorithms.ppo import PPO
from robot_rl.configs import TrainConfig
from robot_rl.envs.vec_env import Obs, VecEnv
from robot_rl.training import checkpoints
from robot_rl.training.episodes import EpisodeTracker
from robot_rl.training.evaluate import evaluate, film
from robot_rl.training.plots import plot_curves
from robot_rl.training.rundir import MetricsLog, RunDir
from robot_rl.utils.files import signals_deferred
from robot_rl.utils.signals import sigterm_interrupts


def build_env(cfg: TrainConfig, num_envs: int | None = None, seed: int | None = None) -> VecEnv:
    """The task of a launch file, with its task overrides and reward weights applied, wrapped
    in a :class:`~robot_rl.rewards.compose.RewardWrapper` when it has reward modules or a
    ``task_weight`` other than 1. Reward modules (and their models) load before the simulation.

    ``task: gym:<EnvId>`` is a Gymnasium environment instead (``backend`` and ``device`` are
    ignored; ``task_overrides`` are keyword arguments of the env's constructor).

    ``robust.randomization`` replaces the task's randomisation; with ``robust.privileged`` the
    env also takes privileged actions (:class:`~robot_rl.disturbers.PrivilegedActionEnv`, built
    at privilege 0, i.e. physically plain, until the training loop's curriculum sets it).
    """
    from robot_rl.envs import make, task_class
    from robot_rl.envs.gym_vector import GymVecEnv, gym_id
    from robot_rl.rewards.compose import RewardWrapper, build_terms, rendering

    r, env_id = cfg.rewards, gym_id(cfg.env.task)
    terms = build_terms(r.modules, default_camera=None if env_id else task_class(cfg.env.task).cameras[0])

    def wrap(env: VecEnv) -> VecEnv:
        return RewardWrapper(env, terms, r.task_weight, cfg.seed) if terms or r.task_weight != 1.0 else env

    robust = cfg.robust
    if env_id:
        if r.weights:
            raise ValueError(f"rewards.weights: {cfg.env.task} has Gymnasium's fixed reward, without named terms")
        if robust.active or robust.randomization is not None:
            raise ValueError(f"robust: {cfg.env.task} is a Gymnasium env; disturbers and randomisation need a "
                             "robot_rl task (robot-rl tasks)")
        return wrap(GymVecEnv.make(env_id, num_envs=num_envs or cfg.env.num_envs,
                                   seed=cfg.seed if seed is None else seed, **cfg.env.task_overrides))
    cameras, image_size = rendering(terms)
    overrides = dict(cfg.env.task_overrides)
    if cfg.rewards.weights:
        defaults = dict(task_class(cfg.env.task).config_class().reward_weights)
        overrides["reward_weights"] = {**defaults, **overrides.get("reward_weights", {}), **cfg.rewards.weights}
    if "randomization" in overrides and isinstance(overrides["randomization"], dict):
        from robot_rl.configs import from_dict
        from robot_rl.envs import Randomization

        overrides["randomization"] = from_dict(Randomization, overrides["randomization"],
                                               "env.task_overrides.randomization")
    if robust.randomization is not None:
        if "randomization" in overrides:
            raise ValueError("randomisation is given twice, in env.task_overrides.randomization and "
                             "robust.randomization; keep one")
        overrides["randomization"] = robust.randomization
    env = wrap(make(cfg.env.task, num_envs=num_envs or cfg.env.num_envs, backend=cfg.env.backend,
                    device=cfg.env.device, seed=cfg.seed if seed is None else seed, overrides=overrides,
                    image_cameras=cameras, image_size=image_size or (84, 84),
                    image_antialias=cfg.env.image_antialias))
    if robust.privileged.enabled:
        from robot_rl.disturbers.privileged import PrivilegedActionEnv

        env = PrivilegedActionEnv(env, robust.privileged)
    return env


def deterministic_policy(model, group: str):
    """obs -> the actor's mean action on observation group ``group``, clipped to [-1, 1]."""

    def act(obs: Obs) -> torch.Tensor:
        return model.action_mean(obs[group]).clamp(-1.0, 1.0)

    return act


def write_evaluation(cfg: TrainConfig, policy, run_dir: Path, episodes: int, video: bool,
                     env_factory=build_env, seed: int = 12345) -> dict[str, Any]:
    """Evaluate ``policy`` on ``episodes`` fresh episodes (``eval.json``) and film world 0
    (``rollout.mp4``); returns what was written."""
    out: dict[str, Any] = {}
    if episodes > 0:
        env = env_factory(cfg, num_envs=episodes, seed=seed)
        result = evaluate(policy, env, episodes, getattr(env, "max_episode_steps", 1000) + 1, seed=seed)
        (run_dir / "eval.json").write_text(json.dumps(result.to_json(), indent=2))
        out["eval"] = {"success_rate": result.success_rate, "mean_return": result.mean_return,
                       "std_return": result.std_return, "episodes": episodes}
        env.close()
    if video:
        env = env_factory(cfg, num_envs=1, seed=seed + 1)
        if hasattr(env, "render"):
            from robot_rl.utils.video import write_video

            control_dt = getattr(env, "control_dt", 0.05)
            frames = film(policy, env, max(1, round(cfg.log.video_seconds / control_dt)), seed=seed + 1)
            out["video"] = str(write_video(run_dir / "rollout.mp4", frames, fps=1 / control_dt))
        env.close()
    return out


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """PPO on a :class:`VecEnv` driven by a :class:`TrainConfig`.

    Under ``torchrun`` every process builds its own batch of worlds (seeded by rank) and
    gradients are averaged; only rank 0 writes the run directory.
    """

    def __init__(self, cfg: TrainConfig, env: VecEnv | None = None, run_dir: Path | None = None,
                 resume: Path | None = None, env_factory=build_env) -> None:
        self.cfg = cfg
        self.rank, self.world_size = _rank_world()
        self.env_factory = env_factory
        self.env = env or env_factory(cfg, seed=cfg.seed + 1000 * self.rank)
        if self.env.device.type == "cpu":
            torch.set_num_threads(1)  # small MLP updates are far slower with more threads on few cores
        torch.manual_seed(cfg.seed + self.rank)
        a = cfg.algo
        for group in (a.actor_obs, a.critic_obs):
            if group not in self.env.obs_dims:
                raise ValueError(f"algo: observation group {group!r} not produced by the env; "
                                 f"it has {', '.join(self.env.obs_dims)}")
        # Simulation-only privileged actions follow the robot's (robot_rl.disturbers.privileged).
        action_dim = self.env.action_dim + getattr(self.env, "privileged_action_dim", 0)
        self.dims = {"actor_obs": self.env.obs_dims[a.actor_obs], "critic_obs": self.env.obs_dims[a.critic_obs],
                     "actions": action_dim}
        generator = torch.Generator(device=self.env.device).manual_seed(cfg.seed + self.rank)
        self.ppo = PPO(a, self.dims["actor_obs"], self.dims["critic_obs"], action_dim,
                       self.env.num_envs, self.env.device, generator)
        self.robust = None
        if cfg.robust.active:
            from robot_rl.disturbers.hooks import Robustness

            self.robust = Robustness.build(cfg, self.env, cfg.seed + 1000 * self.rank)
        self.iteration, self.env_steps = 0, 0
        self.run: RunDir | None = None
        """The run directory, held (locked) by this process; rank 0 only."""
        self.resumed = resume is not None
        self._metrics: MetricsLog | None = None
        try:
            if self.rank == 0:  # lock first: a second writer is refused before anything is read or written
                if resume is not None:
                    self.run = RunDir.resume(resume)
                elif run_dir is not None:
                    Path(run_dir, "checkpoints").mkdir(parents=True, exist_ok=True)
                    self.run = RunDir(Path(run_dir))
                else:
                    self.run = checkpoints.new_run_dir(cfg)
            if resume is not None:
                self._restore(checkpoints.latest_checkpoint(resume))
                if self.run is not None:
                    self.run.cut_metrics(self.env_steps)  # rows a killed run logged after its last checkpoint
            if self.run is not None:
                checkpoints.write_config(self.run, cfg)
        except BaseException:
            self.close()
            raise
        self.run_dir: Path | None = self.run.path if self.run is not None else None

    def close(self) -> None:
        """Release the run directory (training's end does; so does the process's)."""
        if self.run is not None:
            self.run.close()

    # -- checkpoints ---------------------------------------------------------------------------

    def _restore(self, path: Path) -> None:
        payload = checkpoints.load_checkpoint(path, self.cfg.env.task, self.dims)
        self.ppo.model.load_state_dict(payload["model"])
        self.ppo.optimizer.load_state_dict(payload["optimizer"])
        self.ppo.lr = payload["lr"]
        self.iteration, self.env_steps = payload["iteration"], payload["env_steps"]
        if self.robust is not None:
            from robot_rl.disturbers.hooks import read_robust, robust_checkpoint

            extra = robust_checkpoint(path)
            if not extra.is_file():
                raise checkpoints.CheckpointError(f"{extra} is missing: the run's disturber/curriculum state")
            self.robust.load_state_dict(read_robust(extra))

    def save(self) -> Path | None:
        """The checkpoint of this iteration (with the disturber state and learned reward models);
        Ctrl-C or ``kill`` meanwhile waits until it is written."""
        if self.run_dir is None:
            return None
        with signals_deferred():
            return self._save()

    def _save(self) -> Path:
        if getattr(self.env, "learners", None):  # rewards learned during training
            self.env.save_learned(self.run_dir / "reward_models")
        if self.robust is not None:  # first, so a model checkpoint always has its disturber state
            from robot_rl.disturbers.hooks import robust_checkpoint

            self.robust.save(robust_checkpoint(self.run.checkpoint(self.iteration)))
        return checkpoints.save_checkpoint(
            self.run.checkpoint(self.iteration), task=self.cfg.env.task, dims=self.dims,
            model=self.ppo.model, optimizer=self.ppo.optimizer, iteration=self.iteration,
            env_steps=self.env_steps, lr=self.ppo.lr, cfg=self.cfg)

    # -- training ------------------------------------------------------------------------------

    def policy(self):
        return deterministic_policy(self.ppo.model, self.cfg.algo.actor_obs)

    def train(self, callback=None) -> dict[str, Any]:
        """Train until the budget is spent. ``callback(trainer, row)`` runs after every
        iteration with its metrics; returning True stops training early (under torch.distributed,
        on every rank once any rank's callback returns True: ``row`` holds that rank's episodes)."""
        cfg, env, ppo = self.cfg, self.env, self.ppo
        a = cfg.algo
        steps_per_iteration = a.num_steps * env.num_envs * self.world_size
        total_iterations = math.ceil(cfg.budget.env_steps / steps_per_iteration)
        deadline = time.monotonic() + 60 * cfg.budget.minutes if cfg.budget.minutes else math.inf
        tracker = EpisodeTracker(env.num_envs, env.device)
        bar = self._progress_bar(total_iterations * steps_per_iteration)
        metrics_file = self.run_dir / "metrics.csv" if self.run_dir else None
        writer = self._tensorboard()
        interrupted = stop = False
        obs, _ = env.reset(seed=cfg.seed + 1000 * self.rank + self.iteration)
        actions_low, actions_high = env.action_low, env.action_high
        robust = self.robust
        if self.dims["actions"] > env.action_dim:  # privileged actions lie in [-1, 1]
            extra = torch.ones(self.dims["actions"] - env.action_dim, device=env.device)
            actions_low, actions_high = torch.cat([actions_low, -extra]), torch.cat([actions_high, extra])
        restore_sigterm = sigterm_interrupts()  # kill saves a checkpoint, as Ctrl-C does
        try:
            while self._keep_going(deadline, stop):
                start = time.perf_counter()
                if robust is not None:
                    robust.start_iteration(self.iteration)
                for _ in range(a.num_steps):
                    actions = ppo.act(obs[a.actor_obs], obs[a.critic_obs])
                    if robust is not None:
                        robust.before_step(obs)
                    obs, reward, terminated, truncated, info = env.step(
                        torch.maximum(torch.minimum(actions, actions_high), actions_low))
                    if robust is not None:
                        robust.after_step(terminated, truncated, info)
                    ppo.record(reward, terminated, truncated, info["final_obs"][a.critic_obs])
                    tracker.step(reward, terminated | truncated, info)
                collect_time = time.perf_counter() - start
                if robust is None:
                    ppo.finish_rollout(obs[a.critic_obs])
                else:
                    ppo.finish_rollout(obs[a.critic_obs], shape_advantages=robust.shaper(obs))
                stats = ppo.update()
                robust_row = robust.update(obs, a.num_steps) if robust is not None else {}
                self.iteration += 1
                self.env_steps += steps_per_iteration
                elapsed = time.perf_counter() - start
                row = {"iteration": self.iteration, "env_steps": self.env_steps, **tracker.summary(),
                       "loss/surrogate": stats.surrogate, "loss/value": stats.value, "train/entropy": stats.entropy,
                       "train/kl": stats.kl, "train/lr": stats.lr, "train/action_std": stats.action_std,
                       "perf/fps": steps_per_iteration / elapsed, "perf/collect_fraction": collect_time / elapsed,
                       **robust_row}
                if hasattr(env, "learning_metrics"):  # rewards learned during training
                    row.update(env.learning_metrics())
                self._log(row, metrics_file, writer)
                if bar is not None:
                    bar.update(steps_per_iteration)
                    bar.set_postfix(ret=f"{row.get('episode/return', float('nan')):.2f}",
                                    success=f"{row.get('episode/success', float('nan')):.2f}",
                                    fps=f"{row['perf/fps']:.0f}", refresh=False)
                if self.iteration % cfg.log.checkpoint_every == 0:
                    self.save()
                stop = callback is not None and bool(callback(self, row))
        except KeyboardInterrupt:
            interrupted = True
        except BaseException:
            restore_sigterm()
            self.close()
            raise
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
        try:
            return self._wrap_up(interrupted)
        finally:
            restore_sigterm()
            self.close()

    def _wrap_up(self, interrupted: bool) -> dict[str, Any]:
        """Checkpoint, curves and (unless interrupted) the final evaluation and video. An
        interrupt during the evaluation or video keeps the checkpoint: ``interrupted`` is then
        ``"evaluation"``."""
        cfg, robust = self.cfg, self.robust
        checkpoint = self.run.checkpoint(self.iteration) if self.run is not None else None
        summary: dict[str, Any] = {"run_dir": str(self.run_dir) if self.run_dir else None,
                                   "iterations": self.iteration, "env_steps": self.env_steps,
                                   "interrupted": interrupted, "checkpoint": str(checkpoint) if checkpoint else None}
        metrics_file = self.run_dir / "metrics.csv" if self.run_dir else None
        try:
            self.save()  # a signal meanwhile is held until the file is whole, then lands below
            if metrics_file is not None and metrics_file.exists():
                summary["curves"] = str(plot_curves(metrics_file, self.run_dir / "curves.png", cfg.env.task))
                if robust is not None:
                    from robot_rl.disturbers.plots import plot_robustness

                    summary["robust_curves"] = str(plot_robustness(metrics_file, self.run_dir / "robust.png",
                                                                   cfg.env.task))
            if not interrupted and self.rank == 0:
                summary.update(self.finish())
        except KeyboardInterrupt:
            summary["interrupted"] = summary["interrupted"] or "evaluation"
        return summary

    def _keep_going(self, deadline: float, stop: bool) -> bool:
        """Whether to run another iteration. Counted in env steps, not iterations, so a run
        resumed with another number of processes or worlds still stops at its budget. Under
        torch.distributed the ranks must agree, else one waits forever in the next collective
        while the other has stopped: stop when any rank's clock says the time is up or any
        rank's callback asked to stop."""
        go = not stop and self.env_steps < self.cfg.budget.env_steps and time.monotonic() < deadline
        if self.world_size > 1:
            flag = torch.tensor(float(go), device=self.env.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            go = bool(flag.item())
        return go

    def finish(self) -> dict[str, Any]:
        """Final evaluation (``eval.json``) and video (``rollout.mp4``) in the run directory."""
        if self.run_dir is None:
            return {}
        if getattr(getattr(self.env, "sim", None), "one_per_process", False):
            self.env.close()  # e.g. Isaac Lab: the evaluation env needs the process's only simulation
        factory = self.env_factory
        if getattr(self.env, "learners", None):  # evaluate with the rewards as learned, not fresh ones

            def factory(cfg, num_envs=None, seed=None):
                return self.env_factory(cfg, num_envs=num_envs, seed=seed).adopt_learned(self.env)

        return write_evaluation(self.cfg, self.policy(), self.run_dir, self.cfg.log.eval_episodes,
                                self.cfg.log.video, factory)

    # -- logging -------------------------------------------------------------------------------

    def _progress_bar(self, total: int):
        if self.rank != 0 or not self.cfg.log.progress_bar:
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.env_steps, unit="step", unit_scale=True,
                    desc=f"{self.cfg.env.task} PPO", dynamic_ncols=True, mininterval=1.0)

    def _tensorboard(self):
        if self.run_dir is None or not self.cfg.log.tensorboard:
            return None
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.run_dir))

    def _log(self, row: dict[str, float], metrics_file: Path | None, writer) -> None:
        if metrics_file is None:
            return
        if self._metrics is None:
            # Episode columns exist from the start although the first episodes end later.
            task = getattr(self.env, "task", None)
            names = getattr(self.env, "reward_term_names", None) or (task.reward_term_names if task else tuple)
            terms = [f"episode/reward/{t}" for t in names()]
            episode = ["episode/return", "episode/length", "episode/success", *terms]
            columns = list(dict.fromkeys(["iteration", "env_steps", *episode, *row]))
            self._metrics = MetricsLog.open(metrics_file, columns, append=self.resumed)
        self._metrics.write(row)
        if writer is not None:
            for key, value in row.items():
                if key not in ("iteration", "env_steps"):
                    writer.add_scalar(key, value, self.env_steps)
