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
(SIGINT/SIGTERM) ``checkpoints/model_<steps>.pt`` (the full SAC state) and ``policy.pt``, the
fine-tuned policy for ``policy_node``.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

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


@dataclass(frozen=True)
class LearnerNodeParams:
    robot: str = param(doc="robot config YAML (topic names)")
    policy: str = param(doc="the policy file policy_node runs: observation and action sizes, the metadata of "
                            "the fine-tuned policy.pt and, with start_from_policy, the actor's first weights")
    config: str = param(doc="offline launch YAML with the SAC/RLPD settings (sac:, net:, dataset: for demos, "
                            "budget:, root:), e.g. launch/offline/panda_reach_robot_rlpd.yaml")
    start_from_policy: bool = param(True, "start the actor and the observation normaliser from the policy file "
                                          "(an offline or fine-tuned export); false: from scratch, as RLPD does")
    publish_every: int = param(50, "robot steps between weight messages once updates have started")
    checkpoint_every: int = param(2000, "robot steps between checkpoints and policy.pt; 0: only on shutdown")
    output: str = param("", "root of the run directory; empty: the config's root")
    backend: str = param("auto", "transport: auto, cyclone or rclpy")


def _row(values: tuple, terminal: bool) -> list[Any]:
    """One transition as tensors with a batch dimension of 1."""
    import torch

    obs, action, reward, next_obs, _, flag = values
    return [torch.as_tensor(np.asarray(obs, dtype=np.float32))[None],
            torch.as_tensor(np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0))[None],
            torch.tensor([float(reward)]), torch.as_tensor(np.asarray(next_obs, dtype=np.float32))[None],
            torch.tensor([terminal]), torch.tensor([bool(flag)])]


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
        from robot_rl.offline.trainer import MetricsLog, new_run_dir

        if params.publish_every < 1 or params.checkpoint_every < 0:
            raise ConfigError(f"publish_every must be at least 1 and checkpoint_every at least 0, got "
                              f"{params.publish_every} and {params.checkpoint_every}")
        self.params, self.config = params, config
        self.log = setup_logging(node_name)
        self.warn = Throttle(self.log, 10.0)
        torch.set_num_threads(1)  # small MLP updates are slower with more threads on few cores
        policy, self.meta, _ = load_checked_policy(params.policy, config)
        task = self.meta["task"]
        cfg = load(OfflineConfig, params.config)
        if cfg.task and cfg.task != task:
            raise ConfigError(f"{params.config}: task {cfg.task!r} but {params.policy} runs {task!r}; "
                              "remove task: or deploy a policy of that task")
        self.cfg = cfg = dataclasses.replace(cfg, task=task, algo="sac", root=params.output or cfg.root)
        self.task = task
        obs_dim, action_dim = int(self.meta["observation_dim"]), int(self.meta["action_dim"])
        demos = demo_transitions(cfg)
        if demos is not None and (demos.obs.shape[1], demos.action.shape[1]) != (obs_dim, action_dim):
            raise DatasetError(f"{cfg.dataset}: {demos.obs.shape[1]} observations and {demos.action.shape[1]} "
                               f"actions per frame, but {params.policy} takes {obs_dim} and gives {action_dim}; "
                               "use demos recorded with this policy's task and robot")
        start: dict[str, np.ndarray] = {}
        norm = None
        if params.start_from_policy:
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

        self.run_dir = new_run_dir(cfg.root, task)
        self.resolved = {**to_dict(cfg), "learner_node": dataclasses.asdict(params)}
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.resolved, sort_keys=False))
        self.metrics = MetricsLog(self.run_dir / "metrics.csv",
                                  ["env_steps", "updates", "weights/version", "episode/return", "episode/success",
                                   "episode/intervention", "loss/critic", "loss/actor", "train/alpha", "train/q",
                                   "perf/backlog"])
        self.stream = TransitionStream()
        self.records: queue.Queue[Transition] = queue.Queue()
        self.env_steps = self.updates = self.version = 0
        self.last_publish = 0
        self.stats: dict[str, float] = {}
        self.episode_rewards: list[float] = []
        self.episode_flags: list[bool] = []
        self.finished: list[tuple[float, float, float]] = []
        """(return, success, intervention share) of episodes ended since the last metrics row."""
        self.started = time.monotonic()

        self.transport = t = transport or make_transport(node_name, params.backend, namespace)
        self.weights_pub = t.publisher(config.topics.weights, M.FLOAT32_ARRAY, LATCHED)
        t.subscribe(config.topics.transition, M.FLOAT64_ARRAY, self.on_transition, TRANSITION_QOS)
        self.log.info("fine-tuning %s (%s) from %s: %d demo transitions, warmup %d, utd %d, run directory %s",
                      task, "from the policy" if start else "from scratch", config.topics.transition,
                      len(self.learner.demos), cfg.sac.warmup, cfg.sac.utd, self.run_dir)

    # -- callback -----------------------------------------------------------------------------------

    def on_transition(self, msg: Any) -> None:
        try:
            self.records.put(from_message(msg))
        except ValueError as error:
            self.warn.warning("record", "ignoring a message on %s: %s", self.config.topics.transition, error)

    # -- loop ---------------------------------------------------------------------------------------

    def process(self, record: Transition) -> None:
        """Learn from one record: its finished transitions join the buffers, each followed by
        one RLPD step; publish and checkpoint when due.

        An episode that ends in success is terminal (no bootstrapping past it); one cut by the
        time limit is not, as in simulation. The stream hands out an episode's last transition
        as soon as its record arrives, so a ``done`` transition is always ``record``'s own."""
        for values in self.stream.push(record):
            self.learner.add(*_row(values, terminal=bool(values[4] and record.success)))
            self.env_steps += 1
            self.episode_rewards.append(float(values[2]))
            self.episode_flags.append(bool(values[5]))
            stats = self.learner.update()
            if stats:
                self.stats, self.updates = stats, self.updates + 1
            if values[4]:
                self.finished.append((sum(self.episode_rewards), float(record.success),
                                      float(np.mean(self.episode_flags))))
                self.episode_rewards, self.episode_flags = [], []
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
            try:
                record = self.records.get(timeout=0.1)
            except queue.Empty:
                continue
            self.process(record)
            backlog = self.records.qsize()
            if backlog > BACKLOG_WARNING:
                self.warn.warning("backlog", "learning is slower than the robot: %d records waiting; lower "
                                  "sac.utd, sac.ensemble or net.batch_size in %s", backlog, self.params.config)
            if (cfg.budget.env_steps and self.env_steps >= cfg.budget.env_steps) or time.monotonic() > deadline:
                self.log.info("budget reached after %d robot steps", self.env_steps)
                break
        return 0

    # -- outputs ------------------------------------------------------------------------------------

    def save(self) -> tuple[Path, Path]:
        """``checkpoints/model_<steps>.pt`` (the SAC state, as offline training writes it) and
        ``policy.pt`` (the actor, with the deployed policy's metadata)."""
        import torch

        from robot_rl.offline.trainer import CHECKPOINT_FORMAT, ExportView
        from robot_rl.training.export import export_policy

        checkpoint = self.run_dir / "checkpoints" / f"model_{self.env_steps}.pt"
        state = {"format": CHECKPOINT_FORMAT, "algo": "sac", "task": self.task, "updates": self.updates,
                 "env_steps": self.env_steps, "weights_version": self.version, "state": self.algo.state_dict(),
                 "config": self.resolved}
        torch.save(state, checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)
        meta = {**self.meta, "checkpoint": str(checkpoint), "weights_version": self.version}
        low = torch.tensor(meta["action_low"], dtype=torch.float32)
        high = torch.tensor(meta["action_high"], dtype=torch.float32)
        policy = self.run_dir / "policy.pt"
        export_policy(ExportView(self.algo.actor, len(low)), policy.with_suffix(".tmp"), meta, low, high)
        policy.with_suffix(".tmp").replace(policy)
        return checkpoint, policy

    def close(self) -> None:
        """Leave the network, then save what was learned."""
        self.transport.close()
        checkpoint, policy = self.save()
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
