"""``policy_node``: run an exported policy on a robot at a fixed rate.

    robot-rl-policy-node --ros-args -p robot:=real/config/panda.yaml -p policy:=policy.pt -p target:="[0.5, 0.1, 0.3]"

Each step: newest valid /joint_states (+ goal) -> observation -> policy -> intervention mux ->
joint targets -> safety filter -> /<controller>/commands (or joint_trajectory), plus one
transition record on /policy/transition. Malformed joint states (wrong names or count, NaN)
are logged and no command is sent; stale states, the e-stop and bad actions make the safety
filter hold. The policy file is checked against the robot before the node joins the network.

An episode ends at the goal (or the time limit). A new one starts only once the goal changes: the
next ``target`` entry differs or the target topic brings another goal. Until then the node holds
the arm at its last safe command and publishes no transition, so a fixed target is one episode,
held. With ``episodes:=K`` the node ends after K episodes, or earlier when the goal it reached is
the only one it was given (nothing else can start). On stop it sends the hold once more.

With ``learn:=true`` the node also takes the actor weights ``learner_node`` publishes on
/policy/weights: they are checked against the loaded policy when they arrive (weights that do
not fit are refused, the old ones kept) and swapped in between two control steps, never during one.
Every transition record carries the version that acted (``weights_version``, 0: the file's own).

Push and lift policies see the cube through the camera: ``perception:=MODEL`` (a model from
``robot-rl perception-train``, checked against the task, the robot's camera and image size before
the node joins the network) estimates it at every step from the newest colour and depth images of
one stamp. A stale pair, a cube not found or found with too little confidence makes the node hold
(no step, no transition), as stale joint states do; without depth images at start it stops naming
the topic. Success is judged from the estimated cube: the node has no other view of it.
``summary:=FILE`` writes episodes, successes and the control loop's latency (JSON) on stop.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl_ros import messages as M
from robot_rl_ros import weights as W
from robot_rl_ros.config import RobotConfig, load_robot
from robot_rl_ros.intervention import JointDeltaSource, Mux, TwistSource
from robot_rl_ros.node import NodeError, Rate, Shutdown, Throttle, run, setup_logging
from robot_rl_ros.observation import RobotReading, TaskObservation, for_policy
from robot_rl_ros.params import param, parse
from robot_rl_ros.perception import CameraTracker, Perception, load_estimator
from robot_rl_ros.qos import DEFAULT, LATCHED, SENSOR_DATA, QosProfile
from robot_rl_ros.safety import ArmState, SafetyFilter
from robot_rl_ros.transition import Transition, to_message
from robot_rl_ros.transport import make_transport

TRANSITION_QOS = QosProfile(depth=200)  # reliable, deep enough that a busy recorder loses nothing


@dataclass(frozen=True)
class PolicyNodeParams:
    robot: str = param(doc="robot config YAML, e.g. real/config/panda.yaml")
    policy: str = param(doc="exported policy file (robot-rl export RUN_DIR --out policy.pt)")
    rate_hz: float = param(0.0, "control rate (Hz); 0 uses the policy's training rate 1/control_dt")
    target: tuple[float, ...] = param((), "goals [x, y, z, x, y, z, ...] (m), one per episode, cycled; "
                                          "empty: read them from the robot's target topic")
    episode_length_s: float = param(0.0, "episode time limit (s); 0 uses the task's")
    episodes: int = param(0, "stop after this many episodes (or once a fixed goal is reached and no other goal "
                             "follows); 0 runs until stopped, holding at a reached goal until it changes")
    end_on_success: bool = param(True, "end an episode when the goal is reached (else only at the time limit)")
    teleop: bool = param(True, "listen to the teleop topics (intervention)")
    wait_for_recorder_s: float = param(0.0, "before moving, wait this long for a subscriber on the transition "
                                            "topic (the recorder) and fail without one; 0 does not wait")
    learn: bool = param(False, "run the newest actor weights the learner node publishes on the robot's weights "
                               "topic (needs a policy exported from offline training or fine-tuning)")
    perception: str = param("", "perception model (robot-rl perception-train) that finds the cube in the camera's "
                                "colour and depth images; push and lift policies need one")
    max_image_age_s: float = param(0.2, "hold when the newest colour/depth pair is older than this (s)")
    camera_wait_s: float = param(20.0, "with perception: fail when colour, depth or camera info has not arrived "
                                       "within this many seconds of starting")
    summary: str = param("", "on stop, write episodes, successes and control-loop latency as JSON to this file")
    backend: str = param("auto", "transport: auto, cyclone or rclpy")


def check_perception(task: TaskObservation, perception: str | Path, config: RobotConfig) -> Any:
    """The checked perception model a policy's observation needs (None when it needs none);
    ValueError or FileNotFoundError naming what does not fit."""
    if task.perceives and not perception:
        raise ValueError(f"{task.task} policies act on the {', '.join(task.perceives)} the camera sees: give a "
                         f"perception model (robot-rl deploy --perception MODEL, or perception:=MODEL), trained with "
                         f"`robot-rl perception-train --task {task.task}`")
    if perception and not task.perceives:
        raise ValueError(f"{task.task} observes nothing through the camera; deploy it without a perception model")
    return load_estimator(perception, task.task, task.perceives, config) if perception else None


def load_checked_policy(path: str | Path, config: RobotConfig) -> tuple[Any, dict[str, Any], TaskObservation]:
    """The policy module, its metadata and the observation builder; errors say what does not fit."""
    from robot_rl.training.export import load_policy

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"policy file not found: {path}; "
                                f"export one with `robot-rl export RUN_DIR --out {path}`")
    module, metadata = load_policy(path)
    return module, metadata, for_policy(config, metadata)


class StateTracker:
    """Validates /joint_states and keeps the newest good reading with its age."""

    def __init__(self, config: RobotConfig, log: Throttle) -> None:
        self.arm, self.fingers = list(config.arm_joints), list(config.gripper_joints)
        self.synced = config.state_clock_synced
        self.warn = log
        self.latest: tuple[RobotReading, int, float] | None = None
        """(reading, header stamp ns, monotonic time this stamp first arrived)."""
        self.invalid: str | None = None
        """Why the newest joint state was rejected (None: it was fine)."""

    def on_message(self, msg: Any) -> None:
        problem = self._check(msg)
        if problem:
            self.invalid = problem
            self.warn.warning(problem, "bad joint state (%s): holding, no command sent", problem)
            return
        index = {n: i for i, n in enumerate(msg.name)}
        pos = np.asarray(msg.position, dtype=np.float64)
        q = pos[[index[n] for n in self.arm]]
        width = float(pos[[index[n] for n in self.fingers]].sum())
        stamp, now = M.stamp_ns(msg.header), time.monotonic()
        previous = self.latest
        if len(msg.velocity):
            qd = np.asarray(msg.velocity, dtype=np.float64)[[index[n] for n in self.arm]]
        elif previous is not None and stamp > previous[1]:  # drivers without velocities: differentiate
            qd = (q - previous[0].q) / ((stamp - previous[1]) * 1e-9)
        else:
            qd = np.zeros_like(q)
        # A repeated stamp is a frozen driver, not news: the age keeps growing.
        arrived = previous[2] if previous is not None and stamp == previous[1] else now
        self.latest, self.invalid = (RobotReading(q, qd, width), stamp, arrived), None

    def _check(self, msg: Any) -> str | None:
        missing = [n for n in self.arm + self.fingers if n not in msg.name]
        if missing:
            return f"joints {missing} missing from {list(msg.name)}"
        if len(msg.position) != len(msg.name) or (len(msg.velocity) not in (0, len(msg.name))):
            return f"{len(msg.name)} names but {len(msg.position)} positions and {len(msg.velocity)} velocities"
        if not (np.all(np.isfinite(msg.position)) and np.all(np.isfinite(msg.velocity))):
            return "non-finite positions or velocities"
        return None

    def read(self) -> tuple[RobotReading, float] | None:
        """The newest good reading and its age (s), or None before the first one."""
        latest = self.latest
        if latest is None:
            return None
        reading, stamp, arrived = latest
        age = time.monotonic() - arrived
        if self.synced:
            age = max(age, (M.now_ns() - stamp) * 1e-9)
        return reading, age


class PolicyNode:
    def __init__(self, params: PolicyNodeParams, config: RobotConfig, node_name: str, namespace: str = "/") -> None:
        import torch

        self.params, self.config = params, config
        self.log = setup_logging(node_name)
        self.warn = Throttle(self.log)
        torch.set_num_threads(1)  # a 2-layer MLP: threads only add wake-up latency
        self.torch = torch
        self.policy, self.meta, self.task = load_checked_policy(params.policy, config)
        estimator = check_perception(self.task, params.perception, config)
        self.camera = CameraTracker(config) if estimator is not None else None
        self.perception = (Perception(estimator, self.camera, config, self.task.perceives, params.max_image_age_s)
                           if estimator is not None and self.camera is not None else None)
        self.control_dt = 1.0 / params.rate_hz if params.rate_hz > 0 else float(self.meta["control_dt"])
        task_cfg = self.meta.get("task_config", {})
        length = params.episode_length_s or float(task_cfg.get("episode_length_s", 5.0))
        self.max_steps = max(1, math.ceil(length / self.control_dt - 1e-9))
        self.low = np.asarray(self.meta["action_low"], dtype=np.float64)
        self.high = np.asarray(self.meta["action_high"], dtype=np.float64)
        goals = np.asarray(params.target, dtype=np.float64)
        if goals.size % self.task.goal_dim:
            raise ValueError(f"target has {goals.size} values; give {self.task.goal_dim} per goal")
        self.goals = goals.reshape(-1, self.task.goal_dim)
        if params.learn:
            W.check_learnable(self.policy, params.policy, "set learn:=false")
        self.weights_version = 0
        """The learner's weights version the policy runs (0: the policy file's own)."""
        self.weights_latency_s = math.nan
        """Publish time to swap-in time of the running weights (s)."""
        self.pending: W.PolicyWeights | None = None
        self.pending_lock = threading.Lock()
        self.topic_goal: np.ndarray | None = None
        self.safety = SafetyFilter(config, self.control_dt)
        self.states = StateTracker(config, self.warn)
        timeout = config.teleop.timeout_s
        self.twist = TwistSource(self.task, self.control_dt, config.teleop.linear_speed, timeout)
        self.joint_delta = JointDeltaSource(self.task, timeout)
        self.mux = Mux([self.twist, self.joint_delta])

        # Only now, with policy and robot known to fit, join the network.
        self.transport = t = make_transport(node_name, params.backend, namespace)
        topics = config.topics
        if config.command_interface == "commands":
            self.command_pub = t.publisher(config.command_topic, M.FLOAT64_ARRAY, DEFAULT)
        else:
            self.command_pub = t.publisher(config.command_topic, M.JOINT_TRAJECTORY, DEFAULT)
        self.transition_pub = t.publisher(topics.transition, M.FLOAT64_ARRAY, TRANSITION_QOS)
        self.holding_pub = t.publisher(topics.holding, M.BOOL, DEFAULT)
        t.subscribe(topics.joint_states, M.JOINT_STATE, self.states.on_message, SENSOR_DATA)
        # Volatile readers match every publisher (a transient-local reader would ignore volatile ones).
        t.subscribe(topics.estop, M.BOOL, self.on_estop)
        t.subscribe(topics.estop_reset, M.BOOL, self.on_estop_reset)
        t.subscribe(topics.target, M.FLOAT64_ARRAY, self.on_goal, LATCHED)
        if params.teleop:
            t.subscribe(topics.teleop_twist, M.TWIST, self.twist.on_message)
            t.subscribe(topics.teleop_joint_delta, M.FLOAT64_ARRAY, self.joint_delta.on_message)
        if params.learn:
            t.subscribe(topics.weights, M.FLOAT32_ARRAY, self.on_weights, LATCHED)
        if self.camera is not None:
            t.subscribe(topics.image, M.IMAGE, self.camera.on_colour, SENSOR_DATA)
            t.subscribe(topics.depth, M.IMAGE, self.camera.on_depth, SENSOR_DATA)
            t.subscribe(topics.camera_info, M.CAMERA_INFO, self.camera.on_info, SENSOR_DATA)
        self.outcomes: list[bool] = []
        """Success of every finished episode."""
        self.latencies: list[float] = []
        """Seconds from a step's wake-up to its command (perception included), per acting step."""
        self.perception_holds = 0

    # -- callbacks ----------------------------------------------------------------------------------

    def on_estop(self, msg: Any) -> None:
        if msg.data and not self.safety.estopped:
            self.log.warning("e-stop latched: holding until %s", self.config.topics.estop_reset)
            self.safety.estop()

    def on_estop_reset(self, msg: Any) -> None:
        if msg.data and self.safety.estopped:
            self.log.info("e-stop released")
            self.safety.reset_estop()

    def on_goal(self, msg: Any) -> None:
        goal = np.asarray(msg.data, dtype=np.float64)
        if goal.shape == (self.task.goal_dim,) and np.all(np.isfinite(goal)):
            self.topic_goal = goal
        else:
            self.warn.warning("goal", "ignoring goal %s: expected %d finite numbers", goal, self.task.goal_dim)

    def on_weights(self, msg: Any) -> None:
        """Check new actor weights and keep them for the loop; weights that do not fit are refused."""
        try:
            weights = W.from_message(msg)
        except ValueError as error:
            self.warn.warning("weights", "ignoring a message on %s: %s", self.config.topics.weights, error)
            return
        problem = W.mismatch(weights.tensors, W.learnable_state(self.policy))
        if problem:
            self.warn.warning("weights", "refusing weights version %d for %s: %s (the learner's net.hidden must "
                              "match this policy); still running version %d", weights.version, self.params.policy,
                              problem, self.weights_version)
            return
        with self.pending_lock:
            self.pending = weights  # a newer message replaces one the loop has not taken yet

    def apply_weights(self) -> None:
        """Swap in the newest checked weights; called by the loop between two steps."""
        with self.pending_lock:
            weights, self.pending = self.pending, None
        if weights is None:
            return
        W.load_into(self.policy, weights)
        self.weights_version = weights.version
        self.weights_latency_s = (M.now_ns() - weights.stamp_ns) * 1e-9
        self.log.info("running weights version %d (published %.0f ms ago)", weights.version,
                      1e3 * self.weights_latency_s)

    # -- control loop -------------------------------------------------------------------------------

    def goal(self, episode: int) -> np.ndarray | None:
        if len(self.goals):
            return self.goals[episode % len(self.goals)]
        return self.topic_goal

    def act(self, obs: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            action = self.policy(self.torch.from_numpy(obs[None])).numpy()[0].astype(np.float64)
        return np.clip(action, self.low, self.high)

    def publish_command(self, command: np.ndarray) -> None:
        if self.config.command_interface == "commands":
            self.command_pub.publish(M.float64_array(command))
        else:
            self.command_pub.publish(M.joint_trajectory(self.config.command_joints, [command], [self.control_dt]))

    def wait_for_recorder(self, shutdown: Shutdown) -> None:
        deadline = time.monotonic() + self.params.wait_for_recorder_s
        while self.transition_pub.subscription_count() == 0:
            if time.monotonic() > deadline:
                raise NodeError(f"no recorder subscribed to {self.config.topics.transition} within "
                                f"{self.params.wait_for_recorder_s:g} s; start the recorder or set "
                                "wait_for_recorder_s:=0.0 to run without recording")
            if shutdown.wait(0.05):
                return

    def hold(self, reading: RobotReading, age: float, reason: str) -> None:
        """Re-send the last safe command (the measured position before any): a position-controlled
        arm stays where it is. The e-stop and stale-state rules apply as on every step."""
        decision = self.safety.hold(ArmState(reading.q, reading.gripper_width / 2, age), reason)
        if decision.command is not None:
            self.publish_command(decision.command)
        self.holding_pub.publish(M.boolean(True))

    def fixed_goal_done(self, reached: np.ndarray) -> bool:
        """The goals come from the ``target`` parameter and every one of them is ``reached``:
        no other episode can ever start."""
        return bool(len(self.goals)) and all(np.array_equal(g, reached) for g in self.goals)

    def spin(self, shutdown: Shutdown) -> int:
        try:
            return self._spin(shutdown)
        finally:
            if self.params.summary:
                self.write_summary(Path(self.params.summary))

    def _spin(self, shutdown: Shutdown) -> int:
        if self.params.wait_for_recorder_s > 0:
            self.wait_for_recorder(shutdown)
        if self.camera is not None:
            self.camera.wait(shutdown, self.params.camera_wait_s)
        episode, step = 0, 0
        previous = np.zeros(self.task.action_dim)
        reached: np.ndarray | None = None
        """The goal the last episode reached: no new episode starts while it is still the goal."""
        last_seen: Any = None
        """The last usable estimate of the episode's keypoints (perception only)."""
        rate = Rate(1.0 / self.control_dt)
        self.log.info("running %s at %g Hz on %s", self.meta["task"], 1.0 / self.control_dt, self.config.command_topic)
        while not shutdown:
            self.apply_weights()  # after the last step's work, out of the time the loop would sleep
            rate.sleep(shutdown)
            tick, woke = time.time(), time.perf_counter()  # the step's time: when the loop woke, before any work
            latest, goal = self.states.read(), self.goal(episode)
            if self.states.invalid is not None or latest is None:
                if latest is None:
                    self.warn.warning("wait-state", "waiting for %s", self.config.topics.joint_states)
                continue  # the robot holds by itself when commands stop
            if goal is None:
                self.warn.warning("wait-goal", "waiting for a goal on %s", self.config.topics.target)
                continue
            reading, age = latest
            if reached is not None:
                if np.array_equal(goal, reached):
                    self.hold(reading, age, "goal reached")
                    continue
                reached = None
                self.log.info("new goal %s: episode %d starts", np.round(goal, 4).tolist(), episode)
            seen = None
            if self.perception is not None:
                estimate = self.perception.estimate()
                if estimate.problem is not None:
                    self.perception_holds += 1
                    # One throttle per kind of problem (numbers aside), so a new kind is logged at once.
                    self.warn.warning(re.sub(r"[\d.]+", "#", estimate.problem), "holding: %s", estimate.problem)
                    self.hold(reading, age, estimate.problem)
                    if step == 0:
                        continue  # an episode starts once the camera has seen the cube
                    # A started episode's time runs on while the arm holds (it may be what hides the
                    # cube): at its time limit it ends, judged on the last estimate it had.
                    step += 1
                    if step < self.max_steps:
                        continue
                    success = self.task.success(reading, goal, last_seen)
                    self.log.info("episode %d %s after %d steps (the cube last seen by the camera)", episode,
                                  "reached its goal" if success else "timed out", step)
                    self.outcomes.append(success)
                    episode, step, previous = episode + 1, 0, np.zeros(self.task.action_dim)
                    if self.params.episodes and episode >= self.params.episodes:
                        break
                    reached = goal.copy() if success else None
                    continue
                seen = last_seen = estimate.points
            obs = self.task.observe(reading, previous, goal, seen)
            policy_action = self.act(obs)
            person = self.mux.read(reading, policy_action)
            action = np.clip(person.action, self.low, self.high) if person.active else policy_action
            decision = self.safety.filter(self.task.targets(action, reading),
                                          ArmState(reading.q, reading.gripper_width / 2, age))
            if decision.command is not None:
                self.publish_command(decision.command)
            self.latencies.append(time.perf_counter() - woke)
            if decision.hold:
                self.warn.warning("hold", "holding: %s", "; ".join(decision.reasons))
            self.holding_pub.publish(M.boolean(decision.hold))
            success = self.task.success(reading, goal, seen)
            done = (success and self.params.end_on_success) or step + 1 >= self.max_steps
            self.transition_pub.publish(to_message(Transition(
                episode=episode, step=step, time=tick, observation=obs,
                state=np.append(reading.q, reading.gripper_width), policy_action=policy_action, action=action,
                intervention=person.active, reward=float(success), done=done, success=success,
                hold=decision.hold, weights_version=self.weights_version)))
            previous, step = action, step + 1
            if done:
                self.log.info("episode %d %s after %d steps", episode, "reached its goal" if success else "timed out",
                              step)
                self.outcomes.append(success)
                episode, step, previous = episode + 1, 0, np.zeros(self.task.action_dim)
                if self.params.episodes and episode >= self.params.episodes:
                    break
                if success:
                    reached = goal.copy()
                    if self.params.episodes and self.fixed_goal_done(reached):
                        self.log.info("the only goal is reached: stopping after %d of %d episodes", episode,
                                      self.params.episodes)
                        break
                    until = ("until stopped (the target is fixed)" if self.fixed_goal_done(reached) else
                             f"until {'the next target' if len(self.goals) else self.config.topics.target} differs")
                    self.log.info("holding at the goal %s", until)
        self.stop_holding()
        return 0

    def summary(self) -> dict[str, Any]:
        """Episodes finished, successes and the control loop's latency (wake-up to command,
        perception included) in milliseconds."""
        episodes, successes = len(self.outcomes), sum(self.outcomes)

        def ms(values: list[float], q: float) -> float | None:
            return round(1e3 * float(np.quantile(values, q)), 3) if values else None

        seconds = self.perception.seconds if self.perception is not None else []
        return {"task": self.meta["task"], "episodes": episodes, "successes": successes,
                "success_rate": successes / episodes if episodes else None,
                "success_judged_from": "the estimated cube" if self.task.perceives else "the measured tool position",
                "control_steps": len(self.latencies), "control_hz": 1.0 / self.control_dt,
                "median_latency_ms": ms(self.latencies, 0.5), "p95_latency_ms": ms(self.latencies, 0.95),
                "median_perception_ms": ms(seconds, 0.5), "perception_holds": self.perception_holds}

    def write_summary(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.summary(), indent=2) + "\n")

    def stop_holding(self) -> None:
        """On the way out: leave the arm holding its last safe command."""
        latest = self.states.read()
        if latest is not None and self.states.invalid is None:
            self.hold(*latest, "policy node stopping")

    def close(self) -> None:
        self.transport.close()


def main(argv: list[str] | None = None) -> int:
    params, node = parse(PolicyNodeParams, argv, "policy_node", __doc__.split("\n\n")[0])
    shutdown = Shutdown()
    policy = PolicyNode(params, load_robot(params.robot), node.name, node.namespace)
    try:
        return policy.spin(shutdown)
    finally:
        policy.close()


def entry() -> None:
    raise SystemExit(run(main))


if __name__ == "__main__":
    entry()
