"""``learner_node``: fine-tune the deployed policy from the robot's own steps with SAC / RLPD.

    robot-rl-learner-node --ros-args -p robot:=real/config/panda.yaml -p policy:=policy.pt \\
        -p config:=launch/offline/panda_reach_robot_rlpd.yaml

The learner half of an actor/learner split whose actor is ``policy_node`` (run with
``learn:=true``): every transition record on /policy/transition becomes a transition (see
``robot_rl.offline.finetune.TransitionStream``) in an :class:`~robot_rl.offline.finetune.OnlineLearner`,
a person's interventions also in its demo buffer; after ``sac.warmup`` robot steps it runs
``sac.utd`` critic updates per step and, every ``publish_every`` steps, publishes the actor on
/policy/weights (reliable, latched, so a policy node that starts later gets the newest; format in
``robot_rl_ros.weights``). The config's ``dataset:`` seeds the demo buffer (RLPD).

Everything goes to a run directory (``<root>/<task>/<date>_<time>/``, root from the config or
``output``): config.yaml, metrics.csv, and on every ``checkpoint_every`` steps and on shutdown
(SIGINT/SIGTERM) ``checkpoints/model_<steps>.pt`` (the full SAC state, the step and weights
version counters and the random generator), ``checkpoints/replay.pt`` (both replay buffers, one
file replaced each time) and ``policy.pt``, the fine-tuned policy for ``policy_node``.

``resume:=<run directory or checkpoint>`` continues a run: the SAC state, the counters (so the
policy node sees weights versions keep increasing; the restored actor goes out at once) and,
when ``replay.pt`` was written with that checkpoint, the buffers. The run directory keeps
growing (metrics.csv gains rows, config.yaml stays); resuming from a checkpoint that is not the
run's newest starts a new run directory, so the later checkpoints stay as they are.

Each record names the weights version that acted; the learner's current version minus it is the
policy's staleness (``weights/staleness`` in metrics.csv, averaged between two publications).
"""

from __future__ import annotations

import dataclasses
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl_ros import messages as M
from robot_rl_ros import weights as W
from robot_rl_ros.config import RobotConfig, load_robot
from robot_rl_ros.node import Shutdown, Throttle, run, setup_logging
from robot_rl_ros.params import param, parse
from robot_rl_ros.policy_node import TRANSITION_QOS, load_checked_policy
from robot_rl_ros.qos import LATCHED
from robot_rl_ros.transition import Transition, from_message
from robot_rl_ros.transport import Transport, make_transport

BACKLOG_WARNING = 200
"""Records waiting for the learner before it warns that learning is slower than the robot."""
_METRICS = ["env_steps", "updates", "weights/version", "weights/staleness", "episode/return", "episode/success",
            "episode/intervention", "loss/critic", "loss/actor", "train/alpha", "train/q", "perf/backlog"]


@dataclass(frozen=True)
class LearnerNodeParams:
    robot: str = param(doc="robot config YAML (topic names)")
    policy: str = param(doc="the policy file policy_node runs: observation and action sizes, the metadata of "
                            "the fine-tuned policy.pt and, with start_from_policy, the actor's first weights")
    config: str = param(doc="offline launch YAML with the SAC/RLPD settings (sac:, net:, dataset: for demos, "
                            "budget:, root:), e.g. launch/offline/panda_reach_robot_rlpd.yaml")
    start_from_policy: bool = param(True, "start the actor and the observation normaliser from the policy file "
                                          "(an offline or fine-tuned export); false: from scratch, as RLPD does; "
                                          "with resume the checkpoint's actor and normaliser")
    publish_every: int = param(50, "robot steps between weight messages once updates have started")
    checkpoint_every: int = param(2000, "robot steps between checkpoints and policy.pt; 0: only on shutdown")
    output: str = param("", "root of the run directory; empty: the config's root")
    resume: str = param("", "continue a learner run: its run directory (from the newest checkpoints/model_<steps>.pt) "
                            "or one checkpoint file; policy and config must fit it (net.hidden, sac.ensemble, "
                            "sac.layer_norm); empty: a new run")
    save_replay: bool = param(True, "write the replay buffers to checkpoints/replay.pt with every checkpoint "
                                    "(296 bytes per stored step of a 32-number observation), so resume:= "
                                    "keeps them; false: a resumed run starts with empty buffers")
    backend: str = param("auto", "transport: auto, cyclone or rclpy")


def find_checkpoint(resume: str) -> Path:
    """The checkpoint ``resume`` names: a file as given, or a run directory's newest
    ``checkpoints/model_<steps>.pt``. FileNotFoundError saying what to give otherwise."""
    from robot_rl.training.rundir import newest_checkpoint

    path = Path(resume)
    if path.is_file():
        return path
    if path.is_dir():
        newest = newest_checkpoint(path / "checkpoints")
        if newest is None:
            raise FileNotFoundError(f"resume: {path} has no checkpoints/model_<steps>.pt; give a learner run "
                                    "directory (<root>/<task>/<date>_<time>) or one of its checkpoints")
        return newest
    raise FileNotFoundError(f"resume: {path} does not exist; give a learner run directory "
                            "(<root>/<task>/<date>_<time>) or one of its checkpoints/model_<steps>.pt")


def read_checkpoint(path: Path, task: str, cfg: Any, params: LearnerNodeParams) -> dict[str, Any]:
    """A learner checkpoint's contents, checked against the task and the config's network sizes;
    ``robot_rl.training.checkpoints.CheckpointError`` naming the problem and the fix otherwise."""
    from robot_rl.offline.trainer import CHECKPOINT_FORMAT
    from robot_rl.training.checkpoints import CheckpointError
    from robot_rl.utils.files import CorruptFileError, read_checked

    try:
        payload = read_checked(path, None, "checkpoint")
    except CorruptFileError as error:
        raise CheckpointError(f"resume: {error}; give the run directory or another of its "
                              "checkpoints/model_<steps>.pt") from None
    keys = ("state", "env_steps", "weights_version", "updates")
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or payload.get("algo") != "sac" \
            or any(k not in payload for k in keys):
        what = f"format {payload.get('format')!r}, algo {payload.get('algo')!r}" if isinstance(payload, dict) \
            else type(payload).__name__
        raise CheckpointError(f"resume: {path} is not a learner_node checkpoint ({what}); resume:= takes a "
                              "learner run directory or its checkpoints/model_<steps>.pt. To start from another "
                              "run's policy, export it and pass it as policy:= without resume")
    if payload.get("task") != task:
        raise CheckpointError(f"resume: {path} fine-tuned {payload.get('task')!r} but {params.policy} runs "
                              f"{task!r}; resume a run of this task or deploy that task's policy")
    saved = payload.get("config") or {}
    ours = {"net.hidden": list(cfg.net.hidden), "sac.ensemble": cfg.sac.ensemble,
            "sac.layer_norm": cfg.sac.layer_norm}
    theirs = {"net.hidden": (saved.get("net") or {}).get("hidden"),
              "sac.ensemble": (saved.get("sac") or {}).get("ensemble"),
              "sac.layer_norm": (saved.get("sac") or {}).get("layer_norm")}
    differ = [k for k in ours if theirs[k] is not None and theirs[k] != ours[k]]
    if differ:
        raise CheckpointError(f"resume: {path} holds networks with "
                              + ", ".join(f"{k} {theirs[k]}" for k in differ) + f" but {params.config} asks for "
                              + ", ".join(f"{k} {ours[k]}" for k in differ)
                              + f"; set them in {params.config} to the checkpoint's values, or start a new run "
                              "without resume")
    return payload


def _row(values: tuple, terminal: bool) -> list[Any]:
    """One transition as tensors with a batch dimension of 1: :meth:`OnlineLearner.add`'s
    (obs, action, reward, next_obs, done, intervention, ended)."""
    import torch

    obs, action, reward, next_obs, ended, flag = values
    return [torch.as_tensor(np.asarray(obs, dtype=np.float32))[None],
            torch.as_tensor(np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0))[None],
            torch.tensor([float(reward)]), torch.as_tensor(np.asarray(next_obs, dtype=np.float32))[None],
            torch.tensor([terminal]), torch.tensor([bool(flag)]), torch.tensor([bool(ended)])]


class LearnerNode:
    """The learner; ``on_transition`` is the subscription callback (it only queues), ``spin``
    the loop that learns and publishes. ``transport`` replaces the network (tests)."""

    def __init__(self, params: LearnerNodeParams, config: RobotConfig, node_name: str, namespace: str = "/",
                 transport: Transport | None = None) -> None:
        import torch

        from robot_rl.algorithms.replay import FixedNorm
        from robot_rl.configs import load, to_dict
        from robot_rl.configs.loading import ConfigError
        from robot_rl.configs.offline import OfflineConfig
        from robot_rl.data.dataset import DatasetError
        from robot_rl.offline.finetune import OnlineLearner, TransitionStream, demo_transitions
        from robot_rl.training.rundir import RunDir

        if params.publish_every < 1 or params.checkpoint_every < 0:
            raise ConfigError(f"publish_every must be at least 1 and checkpoint_every at least 0, got "
                              f"{params.publish_every} and {params.checkpoint_every}")
        self.params, self.config = params, config
        self.log = setup_logging(node_name)
        self.warn = Throttle(self.log, 10.0)
        policy, self.meta, _ = load_checked_policy(params.policy, config)
        task = self.meta["task"]
        cfg = load(OfflineConfig, params.config)
        torch.set_num_threads(cfg.threads)
        if cfg.task and cfg.task != task:
            raise ConfigError(f"{params.config}: task {cfg.task!r} but {params.policy} runs {task!r}; "
                              "remove task: or deploy a policy of that task")
        self.cfg = cfg = dataclasses.replace(cfg, task=task, algo="sac", root=params.output or cfg.root)
        self.task = task
        checkpoint = find_checkpoint(params.resume) if params.resume else None
        payload = read_checkpoint(checkpoint, task, cfg, params) if checkpoint is not None else None
        obs_dim, action_dim = int(self.meta["observation_dim"]), int(self.meta["action_dim"])
        demos = demo_transitions(cfg)
        if demos is not None and (demos.obs.shape[1], demos.action.shape[1]) != (obs_dim, action_dim):
            raise DatasetError(f"{cfg.dataset}: {demos.obs.shape[1]} observations and {demos.action.shape[1]} "
                               f"actions per frame, but {params.policy} takes {obs_dim} and gives {action_dim}; "
                               "use demos recorded with this policy's task and robot")
        start: dict[str, np.ndarray] = {}
        norm = None
        if params.start_from_policy and payload is None:
            W.check_learnable(policy, params.policy, "set start_from_policy:=false to train a new actor from scratch")
            start = {k: v.numpy() for k, v in W.learnable_state(policy).items()}
            norm = FixedNorm(torch.from_numpy(start["norm.mean"]), torch.from_numpy(start["norm.std"]))
        self.learner = OnlineLearner(cfg, obs_dim, action_dim, demos, norm=norm)
        self.algo = self.learner.sac
        if start:
            problem = W.mismatch(start, W.exported_names(self.algo.actor))
            if problem:
                raise ConfigError(f"{params.policy} does not fit the learner's actor: {problem}; set net.hidden "
                                  f"in {params.config} to the policy's hidden sizes")
            with torch.no_grad():
                for name, tensor in self.algo.actor.actor.state_dict().items():
                    tensor.copy_(torch.from_numpy(start[f"actor.{name}"]))

        self.stream = TransitionStream()
        self.records: queue.Queue[Transition] = queue.Queue()
        self.env_steps = self.updates = self.version = 0
        self.last_publish = 0
        self.stats: dict[str, float] = {}
        self.episode_rewards: list[float] = []
        self.episode_flags: list[bool] = []
        self.finished: list[tuple[float, float, float]] = []
        """(return, success, intervention share) of episodes ended since the last metrics row."""
        self.staleness: list[int] = []
        """The learner's version minus the acting one, per record since the last metrics row."""
        self.resolved = {**to_dict(cfg), "learner_node": dataclasses.asdict(params)}
        run_dir = self._resume(checkpoint, payload) if checkpoint is not None and payload is not None else None
        # One writer per run directory: a second learner resuming the same run is refused here.
        self.run = RunDir.resume(run_dir) if run_dir is not None else RunDir.create(cfg.root, task)
        self.run_dir = self.run.path
        if run_dir is None:
            self.run.write_config(self.resolved)
        self.metrics = self.run.metrics(_METRICS, resume_step=self.env_steps if run_dir is not None else None)
        self.started = time.monotonic()

        self.transport = t = transport or make_transport(node_name, params.backend, namespace)
        self.weights_pub = t.publisher(config.topics.weights, M.FLOAT32_ARRAY, LATCHED)
        t.subscribe(config.topics.transition, M.FLOAT64_ARRAY, self.on_transition, TRANSITION_QOS)
        origin = f"from {checkpoint}" if checkpoint is not None else "from the policy" if start else "from scratch"
        self.log.info("fine-tuning %s (%s) from %s: %d demo transitions, warmup %d, utd %d, run directory %s",
                      task, origin, config.topics.transition, len(self.learner.demos), cfg.sac.warmup, cfg.sac.utd,
                      self.run_dir)
        if checkpoint is not None and self.updates:
            self.publish()  # the policy node may run older weights (or its file's): give it the restored actor
        if cfg.budget.env_steps and self.env_steps >= cfg.budget.env_steps:
            self.log.warning("the run already has %d robot steps, its budget.env_steps is %d: raise budget.env_steps "
                             "in %s to learn longer", self.env_steps, cfg.budget.env_steps, params.config)

    def _resume(self, checkpoint: Path, payload: dict[str, Any]) -> Path | None:
        """Restore the SAC state, the counters, the generator and (from ``replay.pt``, when it was
        written with ``checkpoint``) the buffers; returns the run directory to keep writing, or
        None for a new one (a checkpoint outside a run's checkpoints/ folder, or not its newest)."""
        from robot_rl.offline.finetune import REPLAY_FILE
        from robot_rl.training.checkpoints import CheckpointError
        from robot_rl.training.rundir import config_changes, newest_checkpoint

        saved = payload.get("config") or {}
        try:
            self.algo.load_state_dict(payload["state"])
        except ValueError as error:
            started = saved.get("learner_node") or {}
            raise CheckpointError(f"resume: {checkpoint} does not fit this learner: {error}; resume with the policy "
                                  f"and config the run used ({started.get('policy', '?')}, "
                                  f"{started.get('config', '?')})") from None
        if "generator" in payload:
            self.learner.generator.set_state(payload["generator"])
        self.env_steps, self.updates = int(payload["env_steps"]), int(payload["updates"])
        self.version = int(payload["weights_version"])
        self.last_publish = self.env_steps
        changed = config_changes({**saved, "learner_node": {}}, {**self.resolved, "learner_node": {}})
        if changed:
            self.log.info("resuming with settings that differ from the checkpoint's: %s", "; ".join(changed))

        folder = checkpoint.parent
        newest = newest_checkpoint(folder) if folder.name == "checkpoints" else None
        run_dir = folder.parent if newest is not None and newest.resolve() == checkpoint.resolve() else None
        if folder.name != "checkpoints":
            self.log.info("%s is not in a run's checkpoints/ folder: writing a new run directory", checkpoint)
        elif run_dir is None:
            self.log.warning("%s is not the run's newest checkpoint (%s is): writing a new run directory so the "
                             "later checkpoints stay", checkpoint, newest)
        self._restore_replay(folder / REPLAY_FILE, checkpoint)
        self.log.info("resumed %s: %d robot steps, %d updates, weights version %d, %d online and %d demo "
                      "transitions", checkpoint, self.env_steps, self.updates, self.version, len(self.learner.online),
                      len(self.learner.demos))
        return run_dir

    def _restore_replay(self, path: Path, checkpoint: Path) -> None:
        problem = self.learner.load_replay(path, self.env_steps)
        if problem:
            self.log.warning("no replay buffers to resume with (%s): the online buffer starts empty and the demo "
                             "buffer holds only the config's dataset (%d transitions; the person's interventions "
                             "of the earlier steps are not in it); updates resume after sac.warmup (%d) new robot "
                             "steps", problem, len(self.learner.demos), self.cfg.sac.warmup)

    # -- callback -----------------------------------------------------------------------------------

    def on_transition(self, msg: Any) -> None:
        try:
            self.records.put(from_message(msg))
        except ValueError as error:
            self.warn.warning("record", "ignoring a message on %s: %s", self.config.topics.transition, error)

    # -- loop ---------------------------------------------------------------------------------------

    def process(self, record: Transition, learn: bool = True) -> None:
        """Learn from one record: its finished transitions join the buffers, each followed by
        one RLPD step; publish and checkpoint when due (``learn=False``: only store them).

        An episode that ends in success is terminal (no bootstrapping past it); one cut by the
        time limit is not, as in simulation. The stream hands out an episode's last transition
        as soon as its record arrives, so a ``done`` transition is always ``record``'s own."""
        self.staleness.append(self.version - record.weights_version)
        if record.weights_version > self.version:
            self.warn.warning("version", "records on %s ran weights version %d, newer than this learner's %d: "
                              "the policy node runs another learner's weights; restart it, or resume this "
                              "learner from that learner's run", self.config.topics.transition,
                              record.weights_version, self.version)
        for values in self.stream.push(record):
            self.learner.add(*_row(values, terminal=bool(values[4] and record.success)))
            self.env_steps += 1
            self.episode_rewards.append(float(values[2]))
            self.episode_flags.append(bool(values[5]))
            if values[4]:
                self.finished.append((sum(self.episode_rewards), float(record.success),
                                      float(np.mean(self.episode_flags))))
                self.episode_rewards, self.episode_flags = [], []
            if not learn:
                continue
            stats = self.learner.update()
            if stats:
                self.stats, self.updates = stats, self.updates + 1
            if self.updates and self.env_steps - self.last_publish >= self.params.publish_every:
                self.publish()
            if self.params.checkpoint_every and self.env_steps % self.params.checkpoint_every == 0:
                self.save()

    def publish(self) -> W.PolicyWeights:
        self.version += 1
        self.last_publish = self.env_steps
        weights = W.PolicyWeights(self.version, M.now_ns(), W.exported_names(self.algo.actor))
        self.weights_pub.publish(W.to_message(weights))
        row: dict[str, float] = {"env_steps": self.env_steps, "updates": self.updates,
                                 "weights/version": self.version, "perf/backlog": self.records.qsize(), **self.stats}
        if self.staleness:
            row["weights/staleness"] = float(np.mean(self.staleness))
            self.staleness = []
        if self.finished:
            returns, successes, flags = zip(*self.finished)
            row.update({"episode/return": float(np.mean(returns)), "episode/success": float(np.mean(successes)),
                        "episode/intervention": float(np.mean(flags))})
            self.finished = []
        self.metrics.write(row)
        self.log.info("published weights version %d after %d robot steps (%d updates)", self.version,
                      self.env_steps, self.updates)
        return weights

    def spin(self, shutdown: Shutdown) -> int:
        cfg = self.cfg
        deadline = self.started + 60 * cfg.budget.minutes if cfg.budget.minutes else float("inf")
        while not shutdown:
            if (cfg.budget.env_steps and self.env_steps >= cfg.budget.env_steps) or time.monotonic() > deadline:
                self.log.info("budget reached after %d robot steps", self.env_steps)
                break
            try:
                record = self.records.get(timeout=0.1)
            except queue.Empty:
                continue
            self.process(record)
            backlog = self.records.qsize()
            if backlog > BACKLOG_WARNING:
                self.warn.warning("backlog", "learning is slower than the robot: %d records waiting; lower "
                                  "sac.utd, sac.ensemble or net.batch_size in %s", backlog, self.params.config)
        self.drain()
        return 0

    def drain(self) -> int:
        """Store the records still queued when the loop stops, without learning from them (a
        stop should be quick), so the last checkpoint's buffers hold every step that arrived.
        Returns how many records were stored."""
        stored = 0
        while True:
            try:
                record = self.records.get_nowait()
            except queue.Empty:
                return stored
            self.process(record, learn=False)
            stored += 1

    # -- outputs ------------------------------------------------------------------------------------

    def save(self) -> tuple[Path, Path]:
        """``checkpoints/model_<steps>.pt`` (the SAC state, as offline training writes it, with the
        counters and the generator), ``checkpoints/replay.pt`` (with ``save_replay``) and
        ``policy.pt`` (the actor, with the deployed policy's metadata)."""
        import torch

        from robot_rl.offline.finetune import REPLAY_FILE
        from robot_rl.offline.trainer import CHECKPOINT_FORMAT, ExportView
        from robot_rl.training.export import export_policy
        from robot_rl.utils.files import signals_deferred, write_checked

        checkpoint = self.run.checkpoint(self.env_steps)
        with signals_deferred():  # the buffers, the checkpoint and the policy land together
            if self.params.save_replay:
                self.learner.save_replay(checkpoint.with_name(REPLAY_FILE), self.env_steps)
            write_checked(checkpoint, {
                "format": CHECKPOINT_FORMAT, "algo": "sac", "task": self.task, "updates": self.updates,
                "env_steps": self.env_steps, "weights_version": self.version, "state": self.algo.state_dict(),
                "generator": self.learner.generator.get_state(), "config": self.resolved})
            meta = {**self.meta, "checkpoint": str(checkpoint), "weights_version": self.version}
            low = torch.tensor(meta["action_low"], dtype=torch.float32)
            high = torch.tensor(meta["action_high"], dtype=torch.float32)
            policy = export_policy(ExportView(self.algo.actor, len(low)), self.run_dir / "policy.pt", meta, low, high)
        return checkpoint, policy

    def close(self) -> None:
        """Leave the network, then save what was learned."""
        self.transport.close()
        try:
            checkpoint, policy = self.save()
        finally:
            self.run.close()
        self.log.info("saved %s and %s (%d robot steps, %d updates, weights version %d)", checkpoint, policy,
                      self.env_steps, self.updates, self.version)


def main(argv: list[str] | None = None) -> int:
    params, node = parse(LearnerNodeParams, argv, "learner_node", __doc__.split("\n\n")[0])
    shutdown = Shutdown()
    learner = LearnerNode(params, load_robot(params.robot), node.name, node.namespace)
    try:
        return learner.spin(shutdown)
    finally:
        learner.close()


def entry() -> None:
    raise SystemExit(run(main))


if __name__ == "__main__":
    entry()
