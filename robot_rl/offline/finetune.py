"""Online fine-tuning with SAC / RLPD in simulation, optionally from demonstrations, optionally
with the actor and the learner in separate processes.

    cfg = load(OfflineConfig, "launch/offline/panda_push_rlpd.yaml")
    summary = FinetuneTrainer(cfg).train()      # same run directory as offline-train

:class:`OnlineLearner` is the part without a simulator: the replay buffers (demos and online,
sampled symmetrically), the SAC/RLPD update at a fixed update-to-data ratio, and
``add(..., intervention)`` which puts a person's corrections into both buffers (HIL-SERL). A
deployment loop feeds it transitions (see :func:`ros_transitions` for the ROS 2 recorder's
records, :class:`TransitionStream` as they arrive) and reads ``actor_state()`` to refresh its
policy; ``robot_rl_ros.learner_node`` does that on a robot.

Actor-learner split (``sac.processes: actor_learner``): a ``torch.multiprocessing`` process
steps the worlds with the latest weights and streams transitions through a queue; the learner
(this process) stores them, updates, and sends the actor's weights back through another queue.
"""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rl.algorithms.noise import ColoredNoise
from robot_rl.algorithms.replay import FixedNorm, NStepReturns, ReplayBuffer, SymmetricSampler, add_intervention
from robot_rl.algorithms.sac import SAC
from robot_rl.configs import to_dict
from robot_rl.configs.offline import OfflineConfig
from robot_rl.data.dataset import Dataset, DatasetError, Transitions
from robot_rl.offline.trainer import RunOutputs, frames_until_success, successful_episodes
from robot_rl.training.rundir import RunDir
from robot_rl.utils.files import CorruptFileError, read_checked, signals_deferred, write_checked
from robot_rl.utils.signals import sigterm_interrupts

REPLAY_FILE = "replay.pt"
"""Both replay buffers at the newest checkpoint, in a run's checkpoints/ folder (one file,
replaced at every checkpoint: the buffers are large and only the newest are needed)."""
REPLAY_FORMAT = "robot_rl.learner_replay/1"


def demo_transitions(cfg: OfflineConfig) -> Transitions | None:
    """The dataset's transitions to seed the demo buffer with (``sac.demo_episodes`` successful
    episodes, or all; cut ``sac.demo_after_success`` frames after their first success), or None
    without a dataset."""
    if not cfg.dataset:
        return None
    ds = Dataset(cfg.dataset, require=(cfg.obs, "action", cfg.reward))
    t = ds.transitions(obs=cfg.obs, reward=cfg.reward)
    keep = np.ones(len(t), dtype=bool)
    if cfg.sac.demo_episodes is not None:
        good = successful_episodes(ds).tolist()[:cfg.sac.demo_episodes]
        if len(good) < cfg.sac.demo_episodes:
            raise DatasetError(f"{cfg.dataset}: only {len(good)} episodes end in success, "
                               f"sac.demo_episodes asks for {cfg.sac.demo_episodes}")
        keep &= np.isin(ds.episode_index(), good)
    if cfg.sac.demo_after_success is not None:
        keep &= frames_until_success(ds, cfg.sac.demo_after_success)
    return t.select(torch.as_tensor(keep))


def n_step_demos(demos: Transitions, n: int, gamma: float) -> tuple[torch.Tensor, ...]:
    """(obs, action, reward, next_obs, done, steps) of ``demos`` as n-step transitions (see
    :class:`~robot_rl.algorithms.replay.NStepReturns`; an episode ends at its last transition in
    ``demos``), actions clipped to [-1, 1]."""
    action = demos.action.clamp(-1, 1)
    if n == 1:
        return demos.obs, action, demos.reward, demos.next_obs, demos.done.float(), torch.ones(len(demos))
    last = torch.ones(len(demos), dtype=torch.bool)
    last[:-1] = demos.episode[1:] != demos.episode[:-1]
    nstep, parts = NStepReturns(n, gamma), []
    for i in range(len(demos)):  # one world stepping through the episodes in turn
        row = slice(i, i + 1)
        parts.append(nstep.push(demos.obs[row], action[row], demos.reward[row], demos.next_obs[row],
                                demos.done[row], last[row])[:6])
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


class OnlineLearner:
    """SAC/RLPD learner: demo and online buffers, symmetric sampling, UTD updates.

    Batches take ``sac.demo_fraction`` from the demo buffer whenever it holds anything, so a
    person's interventions are sampled at that rate even without a dataset; without demos and
    interventions every batch is online (plain SAC). ``norm`` fixes the observation normaliser
    (e.g. the deployed policy's); by default it is the demos' statistics, or none."""

    def __init__(self, cfg: OfflineConfig, obs_dim: int, action_dim: int, demos: Transitions | None = None,
                 generator: torch.Generator | None = None, norm: FixedNorm | None = None) -> None:
        s = cfg.sac
        self.cfg = cfg
        self.generator = generator or torch.Generator().manual_seed(cfg.seed)
        if norm is None:
            norm = FixedNorm.of(demos.obs) if demos is not None and cfg.net.normalize_obs and len(demos) > 1 \
                else FixedNorm.identity(obs_dim)
        self.sac = SAC(obs_dim, action_dim, cfg.net, s, norm, self.generator)
        self.demos = ReplayBuffer(obs_dim, action_dim, max(s.buffer_size // 2, len(demos) if demos else 1))
        if demos is not None:
            self.demos.add(*n_step_demos(demos, s.n_step, s.gamma))
        self.online = ReplayBuffer(obs_dim, action_dim, s.buffer_size)
        self.n_step = NStepReturns(s.n_step, s.gamma) if s.n_step > 1 else None
        self.sampler = SymmetricSampler(self.demos, self.online, s.demo_fraction)
        self.pending = 0
        """Environment steps added since the last update."""

    def add(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_obs: torch.Tensor,
            done: torch.Tensor, intervention: torch.Tensor | None = None, ended: torch.Tensor | None = None) -> None:
        """One step of B worlds; where bool[B] ``intervention`` is set the transitions also join
        the demo buffer. ``ended`` bool[B] (the episode ended, terminal or cut by the time
        limit) is needed with ``sac.n_step`` > 1, which stores each transition once its n steps
        are in (or its episode has ended)."""
        b = len(obs)
        flags = intervention if intervention is not None else torch.zeros(b, dtype=torch.bool)
        if self.n_step is None:
            add_intervention(self.sampler, obs, action, reward, next_obs, done.float(), flags)
        else:
            if ended is None:
                raise ValueError("sac.n_step > 1 needs to know where episodes end: pass ended=")
            obs, action, reward, next_obs, done, steps, flags = self.n_step.push(
                obs, action, reward, next_obs, done, ended, flags)
            add_intervention(self.sampler, obs, action, reward, next_obs, done, flags, steps)
        self.pending += b

    def ready(self) -> bool:
        return len(self.online) >= max(self.cfg.sac.warmup, 1)

    def update(self) -> dict[str, float]:
        """One RLPD step (``utd`` critic updates, one actor update) per environment step added
        since the last call; empty before ``warmup`` transitions."""
        stats: dict[str, float] = {}
        if not self.ready():
            self.pending = 0
            return stats
        steps, self.pending = self.pending, 0
        for _ in range(steps):
            stats = self.sac.update(self.sampler)
        return stats

    def save_replay(self, path: Path, env_steps: int) -> None:
        """Both buffers to ``path`` (written whole, then moved into place), tagged with ``env_steps``."""
        write_checked(path, {"format": REPLAY_FORMAT, "env_steps": env_steps, "online": self.online.state_dict(),
                             "demos": self.demos.state_dict()})

    def load_replay(self, path: Path, env_steps: int) -> str | None:
        """Put back the buffers :meth:`save_replay` wrote at ``env_steps``; None when done, else
        why they could not be (the buffers are then left as they are)."""
        if not path.is_file():
            return f"{path} does not exist"
        try:
            replay = read_checked(path, REPLAY_FORMAT, "replay buffer file")
        except CorruptFileError as error:
            return str(error)
        if int(replay["env_steps"]) != env_steps:
            return f"{path} holds the buffers at step {int(replay['env_steps'])}, the checkpoint is of step {env_steps}"
        for name in ("online", "demos"):
            getattr(self, name).load_state_dict(replay[name])
        return None

    def actor_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.sac.actor.state_dict().items()}


RosTransition = tuple[np.ndarray, np.ndarray, float, np.ndarray, bool, bool]
"""(obs float[P], executed action float[A], reward, next obs float[P], done, intervention)."""


class TransitionStream:
    """Consecutive ``robot_rl_ros.transition.Transition`` records (``episode``, ``step``,
    ``observation``, ``action``, ``intervention``, ``reward``, ``done``), as the policy node
    publishes them, in; transitions out as soon as they are known. A record's next observation
    is the following record's, so it leaves one record later; an episode's last record (``done``,
    or followed by another episode) uses its own observation. A record followed by a step that is
    not its successor in the same episode (records lost, or the policy node restarted) has no
    known next observation and is dropped (counted in ``dropped``)."""

    def __init__(self) -> None:
        self.previous: Any = None
        self.dropped = 0

    def push(self, record: Any) -> list[RosTransition]:
        out, previous = [], self.previous
        if previous is not None:
            if previous.episode != record.episode:
                out.append(_transition(previous, previous.observation))
            elif record.step == previous.step + 1:
                out.append(_transition(previous, record.observation))
            else:
                self.dropped += 1
        if record.done:
            out.append(_transition(record, record.observation))
            self.previous = None
        else:
            self.previous = record
        return out

    def flush(self) -> list[RosTransition]:
        """The held-back last record as an episode end (at the end of a recording)."""
        previous, self.previous = self.previous, None
        return [] if previous is None else [_transition(previous, previous.observation)]


def _transition(record: Any, next_obs: np.ndarray) -> RosTransition:
    return record.observation, record.action, record.reward, next_obs, record.done, record.intervention


def ros_transitions(records: Iterable[Any]) -> Iterator[RosTransition]:
    """Every transition of a finished stream of records (see :class:`TransitionStream`)."""
    stream = TransitionStream()
    for record in records:
        yield from stream.push(record)
    yield from stream.flush()


def exploration_noise(cfg: OfflineConfig, env, generator: torch.Generator) -> ColoredNoise | None:
    """The acting noise ``sac.noise_beta`` asks for, one sequence per world and episode; None for
    SAC's independent draws."""
    if not cfg.sac.noise_beta:
        return None
    horizon = getattr(env, "max_episode_steps", None) or 1000  # Gymnasium envs need not say
    return ColoredNoise(cfg.sac.noise_beta, env.num_envs, env.action_dim, horizon, generator)


def _step_batch(env, obs, action, group: str):
    """Step ``env``; returns (next obs dict, transition tensors, info, done mask)."""
    next_obs, reward, terminated, truncated, info = env.step(action)
    final = info["final_obs"][group]  # the state the episode ended in, before the automatic reset
    return next_obs, (obs[group].clone(), action.clone(), reward.clone(), final.clone(), terminated.clone()), \
        info, terminated | truncated


def actor_process(cfg_dict: dict, obs_dim: int, action_dim: int, norm_state: dict, out: Any, weights: Any,
                  stop: Any, start_steps: int = 0) -> None:
    """Actor side of the actor-learner split: step ``cfg.num_envs`` worlds with the latest
    weights (numpy state dicts from ``weights``), put numpy ``(obs, action, reward, next_obs,
    done, ended, success_of_finished)`` on ``out``. ``start_steps``: env steps the run has already
    taken (a resumed run); the worlds and the sampling noise are seeded past them, as in the
    single-process loop, so a resumed actor meets new episodes."""
    from robot_rl.algorithms.sac import SquashedGaussianActor
    from robot_rl.configs import from_dict
    from robot_rl.envs import make

    torch.set_num_threads(1)
    cfg = from_dict(OfflineConfig, cfg_dict)
    group = cfg.obs.removeprefix("observation.")
    norm = FixedNorm(norm_state["mean"], norm_state["std"])
    actor = SquashedGaussianActor(norm, obs_dim, action_dim, cfg.net.hidden)
    gen = torch.Generator().manual_seed(cfg.seed + 1 + start_steps)
    env = make(cfg.task, num_envs=cfg.num_envs, seed=cfg.seed + start_steps, overrides=cfg.task_overrides)
    obs, _ = env.reset(seed=cfg.seed + start_steps)
    noise = exploration_noise(cfg, env, gen)
    steps, have_weights = start_steps, False
    try:
        while not stop.is_set():
            try:
                actor.load_state_dict({k: torch.from_numpy(v) for k, v in weights.get_nowait().items()})
                have_weights = True
            except queue.Empty:
                pass
            if steps < cfg.sac.random_steps and not have_weights:
                action = torch.rand(env.num_envs, env.action_dim, generator=gen) * 2 - 1
            else:
                with torch.no_grad():
                    action = actor.sample(obs[group], gen, None if noise is None else noise.sample())[0]
            obs, transition, info, done = _step_batch(env, obs, action, group)
            if noise is not None:
                noise.restart(done)
            steps += env.num_envs
            out.put(tuple(x.numpy() for x in (*transition, done, info["success"][done])))
    finally:
        env.close()


class FinetuneTrainer(RunOutputs):
    """SAC/RLPD in simulation, writing a run directory like :class:`~robot_rl.offline.trainer.OfflineTrainer`."""

    def __init__(self, cfg: OfflineConfig, run_dir: Path | None = None, resume: Path | None = None) -> None:
        """``resume``: a run directory of an earlier fine-tuning to continue (in place) from its
        newest checkpoint, with ``cfg`` (its config.yaml plus any overrides)."""
        import dataclasses

        from robot_rl.envs import make
        from robot_rl.offline.trainer import obs_group, resolve_task

        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        demos = demo_transitions(cfg)
        cfg = resolve_task(cfg, Dataset(cfg.dataset) if cfg.dataset else None)
        self.cfg = cfg = dataclasses.replace(cfg, algo="sac")
        task, overrides = cfg.task, cfg.task_overrides
        self.group = obs_group(cfg.obs)
        self.env = make(task, num_envs=cfg.num_envs, seed=cfg.seed, overrides=overrides) \
            if cfg.sac.processes == "one" else None
        probe = self.env or make(task, num_envs=1, overrides=overrides)
        self.obs_dim, self.action_dim = probe.obs_dims[self.group], probe.action_dim
        if probe is not self.env:
            probe.close()
        if demos is not None and demos.obs.shape[1] != self.obs_dim:
            raise DatasetError(f"{cfg.dataset}: column {cfg.obs!r} has {demos.obs.shape[1]} values per frame but "
                               f"{task} observes {self.obs_dim}; use a dataset recorded in {task}")
        self.learner = OnlineLearner(cfg, self.obs_dim, self.action_dim, demos)
        self.algo = self.learner.sac
        self.task = task
        self.env_steps = self.updates = 0
        self.next_eval = 0
        self.successes: list[float] = []
        """Success of every finished training episode (0/1)."""
        self.resumed_from: Path | None = None
        if resume is not None:
            self.run = RunDir.resume(resume)  # locked before anything is read: a second writer is refused
            try:
                self._resume(self.run.path)
            except BaseException:
                self.run.close()
                raise
            self.run.cut_metrics(self.env_steps)  # rows a killed run logged after its last checkpoint
        else:
            self.run = RunDir.create(cfg.root, task) if run_dir is None else RunDir.resume(run_dir)
        self.run_dir = self.run.path
        self.run.write_config(to_dict(cfg))

    def close(self) -> None:
        """Close the worlds and release the run directory without training."""
        if self.env is not None:
            self.env.close()
        self.run.close()

    def _resume(self, run_dir: Path) -> None:
        """Restore the SAC state, the counters, the generator and the replay buffers of
        ``run_dir``'s newest checkpoint; CheckpointError naming the problem otherwise."""
        from robot_rl.offline.trainer import CHECKPOINT_FORMAT
        from robot_rl.training.checkpoints import CheckpointError

        checkpoint = self.run.newest_checkpoint()
        if checkpoint is None:
            raise CheckpointError(f"--resume {run_dir}: no checkpoints/model_<steps>.pt there; give a fine-tuning "
                                  "run directory (<root>/<task>/<date>_<time>) that has reached its first "
                                  "checkpoint (every checkpoint_every env steps)")
        try:
            payload = read_checked(checkpoint, CHECKPOINT_FORMAT, "fine-tuning checkpoint")
        except CorruptFileError as error:
            raise CheckpointError(f"--resume: {error}; delete it to resume from the checkpoint before it") from None
        if payload.get("algo") != "sac" or "env_steps" not in payload:
            raise CheckpointError(f"--resume: {checkpoint} is not a fine-tuning checkpoint (robot-rl finetune "
                                  "writes them); offline runs are not resumed, train them again")
        if payload.get("task") != self.task:
            raise CheckpointError(f"--resume: {checkpoint} fine-tuned {payload.get('task')!r}, the config asks for "
                                  f"{self.task!r}; drop the task override")
        try:
            self.algo.load_state_dict(payload["state"])
        except ValueError as error:
            raise CheckpointError(f"--resume: {checkpoint} does not fit these networks: {error}; drop the "
                                  "net/sac overrides that change them") from None
        problem = self.learner.load_replay(checkpoint.with_name(REPLAY_FILE), int(payload["env_steps"]))
        if problem:
            raise CheckpointError(f"--resume: no replay buffers for {checkpoint.name} ({problem}); resuming "
                                  "without them would relearn from an empty buffer: start a new run instead")
        self.learner.generator.set_state(payload["generator"])
        self.env_steps = self.updates = int(payload["env_steps"])
        self.next_eval = int(payload.get("next_eval", self.env_steps))
        self.successes = [float(x) for x in payload.get("successes", [])]
        self.resumed_from = checkpoint

    def save(self) -> Path:
        """``checkpoints/model_<env steps>.pt`` (the SAC state, the counters, the generator) and
        ``checkpoints/replay.pt`` (both buffers), so :meth:`_resume` continues where this stopped."""
        from robot_rl.offline.trainer import CHECKPOINT_FORMAT

        path = self.run.checkpoint(self.env_steps)
        with signals_deferred():  # the buffers and the checkpoint that names them land together
            self.learner.save_replay(path.with_name(REPLAY_FILE), self.env_steps)
            return write_checked(path, {
                "format": CHECKPOINT_FORMAT, "algo": "sac", "task": self.task, "updates": self.env_steps,
                "env_steps": self.env_steps, "next_eval": self.next_eval, "successes": self.successes[-100:],
                "state": self.algo.state_dict(), "generator": self.learner.generator.get_state(),
                "config": to_dict(self.cfg)})

    def train(self) -> dict[str, Any]:
        from robot_rl.envs import make

        cfg = self.cfg
        eval_env = make(cfg.task, num_envs=cfg.eval.interim_episodes, seed=cfg.seed + 1,
                        overrides=cfg.task_overrides) \
            if cfg.eval.interim_episodes else None
        deadline = time.monotonic() + 60 * cfg.budget.minutes if cfg.budget.minutes else math.inf
        log = self.run.metrics(["env_steps", "updates", "episode/success", "eval/success", "eval/return",
                                "loss/critic", "loss/actor", "train/alpha", "train/q", "perf/fps"],
                               resume_step=self.env_steps if self.resumed_from is not None else None)
        bar = None
        if cfg.progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=cfg.budget.env_steps, unit="step", unit_scale=True, dynamic_ncols=True,
                       desc=f"{cfg.task} {'RLPD' if len(self.learner.demos) else 'SAC'}", mininterval=1.0)
        source = self._local_steps() if self.env is not None else self._remote_steps()
        start, first, interrupted, stats = time.perf_counter(), self.env_steps, False, {}
        every = cfg.checkpoint_every
        next_checkpoint = (self.env_steps // every + 1) * every if every else math.inf
        if bar is not None:
            bar.update(self.env_steps)
        restore_sigterm = sigterm_interrupts()  # kill saves a checkpoint, as Ctrl-C does
        try:
            for transition, ended, finished in source:
                self.learner.add(*transition, ended=ended)
                n = len(transition[0])
                self.env_steps += n
                self.successes += finished.float().tolist()
                stats = self.learner.update() or stats
                if bar is not None:
                    bar.update(n)
                if self.env_steps >= self.next_eval:
                    self.next_eval += cfg.eval.every
                    row = {"env_steps": self.env_steps, "updates": self.env_steps * cfg.sac.utd, **stats,
                           "perf/fps": (self.env_steps - first) / (time.perf_counter() - start)}
                    if self.successes:
                        row["episode/success"] = float(np.mean(self.successes[-100:]))
                    if eval_env is not None:
                        row.update(self.evaluate(eval_env, cfg.eval.interim_episodes))
                    log.write(row)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k.startswith(("eval", "episode"))},
                                        refresh=False)
                if self.env_steps >= cfg.budget.env_steps or time.monotonic() > deadline:
                    break
                if self.env_steps >= next_checkpoint:
                    next_checkpoint += every
                    self.save()
        except KeyboardInterrupt:
            interrupted = True
        except BaseException:
            restore_sigterm()
            self.run.close()
            raise
        finally:
            source.close()
            if bar is not None:
                bar.close()
            if eval_env is not None:
                eval_env.close()
            if self.env is not None:
                self.env.close()
        self.updates = self.env_steps
        summary: dict[str, Any] = {"run_dir": str(self.run_dir), "env_steps": self.env_steps,
                                   "interrupted": interrupted, "demos": len(self.learner.demos)}
        try:
            return self.wrap_up(summary, f"{cfg.task} fine-tuning", log.path)
        finally:
            restore_sigterm()

    def _local_steps(self) -> Iterator[tuple[tuple, torch.Tensor, torch.Tensor]]:
        env, cfg, gen = self.env, self.cfg, self.learner.generator
        obs, _ = env.reset(seed=cfg.seed + self.env_steps)  # a resumed run meets new episodes
        use_random = not len(self.learner.demos)
        noise = exploration_noise(cfg, env, gen)
        while True:
            if use_random and self.env_steps < cfg.sac.random_steps:
                action = torch.rand(env.num_envs, env.action_dim, generator=gen) * 2 - 1
            else:
                action = self.algo.act(obs[self.group], eps=None if noise is None else noise.sample())
            obs, transition, info, done = _step_batch(env, obs, action, self.group)
            if noise is not None:
                noise.restart(done)
            yield transition, done, info["success"][done]

    def _numpy_weights(self) -> dict[str, np.ndarray]:
        # Plain arrays through the queue: tensors would travel as shared-memory handles that
        # die with the process that made them.
        return {k: v.numpy() for k, v in self.learner.actor_state().items()}

    def _remote_steps(self) -> Iterator[tuple[tuple, torch.Tensor, torch.Tensor]]:
        import torch.multiprocessing as mp

        ctx = mp.get_context("spawn")
        out, weights, stop = ctx.Queue(maxsize=8), ctx.Queue(maxsize=1), ctx.Event()
        norm = self.algo.actor.actor_norm
        cfg = self.cfg
        if len(self.learner.demos) or self.env_steps:  # demos or a resumed run: the actor starts from the policy
            weights.put(self._numpy_weights())
        process = ctx.Process(target=actor_process, daemon=True,
                              args=(to_dict(cfg), self.obs_dim, self.action_dim,
                                    {"mean": norm.mean.clone(), "std": norm.std.clone()}, out, weights, stop,
                                    self.env_steps))
        process.start()
        received = 0
        try:
            while True:
                try:
                    item = out.get(timeout=120)
                except queue.Empty:
                    exited = "" if process.is_alive() else f" (it exited with {process.exitcode})"
                    raise RuntimeError(f"the actor process sent nothing for 120 s{exited}") from None
                received += 1
                tensors = [torch.from_numpy(x) for x in item]
                yield tuple(tensors[:5]), tensors[5], tensors[6]
                if received % cfg.sac.weight_sync == 0 and weights.empty():  # else the actor has yet to load the last
                    weights.put(self._numpy_weights())
        finally:
            stop.set()
            while True:  # unblock an actor waiting on a full queue
                try:
                    out.get_nowait()
                except queue.Empty:
                    break
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
