"""``recorder``: rosbag2 (MCAP or sqlite3, via rosbags) plus a LeRobot v3 dataset of every step.

    robot-rl-recorder --ros-args -p robot:=real/config/panda.yaml -p output:=runs/deploy

Each run writes a new folder ``output/<date>_<time>/`` with ``rosbag2/episode_NNNNNN/`` (one
complete bag per episode: joint states, camera (colour, depth, info), commands, transitions, e-stop, teleop) and
``lerobot/`` with, per control step, ``observation.state``, ``observation.policy``,
``observation.images.<camera>`` (when a camera publishes), ``action`` (executed),
``policy_action``, ``intervention``, ``next.reward``, ``next.done``, ``next.success``, ``hold`` and
``weights_version`` (the learner's weights version that acted; 0: the policy file's own).
Both are finished whenever an episode ends, so a crash loses at most the open episode; a clean
stop (SIGINT) also keeps the open one. A bag opens with an episode's first transition and also
holds the ``preroll_s`` seconds before it; what arrives between episodes (the arm holding at a
reached goal) is kept no longer, so every bag is one dataset episode and nothing else.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl_ros import messages as M
from robot_rl_ros.config import RobotConfig, load_robot
from robot_rl_ros.node import NodeError, Shutdown, Throttle, run, setup_logging
from robot_rl_ros.params import param, parse
from robot_rl_ros.policy_node import TRANSITION_QOS
from robot_rl_ros.qos import DEFAULT, SENSOR_DATA
from robot_rl_ros.transition import Transition, from_message
from robot_rl_ros.transport import make_transport


@dataclass(frozen=True)
class RecorderParams:
    robot: str = param(doc="robot config YAML (which topics to record)")
    output: str = param(doc="directory for recordings; each run writes a new <date>_<time> folder in it")
    storage: str = param("mcap", "rosbag2 storage: mcap or sqlite3")
    fps: float = param(20.0, "control rate written to the LeRobot metadata (Hz)")
    task: str = param("", "task description stored with each episode")
    images: bool = param(True, "put camera images into the LeRobot dataset")
    preroll_s: float = param(2.0, "also put the messages of this many seconds before an episode's first "
                                  "transition into its bag")
    backend: str = param("auto", "transport: auto, cyclone or rclpy")


def check_writable(path: Path) -> Path:
    """Create ``path`` if needed and prove it is writable; raise NodeError naming the fix."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise NodeError(f"recording directory {path} is not writable ({error.strerror}); "
                        "choose a directory you can write to") from None
    return path


def recorded_topics(config: RobotConfig) -> list[tuple[str, str, Any]]:
    """(topic, type, QoS) of everything a deployment should keep."""
    t = config.topics
    command_type = M.FLOAT64_ARRAY if config.command_interface == "commands" else M.JOINT_TRAJECTORY
    return [
        (t.joint_states, M.JOINT_STATE, SENSOR_DATA), (t.image, M.IMAGE, SENSOR_DATA),
        (t.depth, M.IMAGE, SENSOR_DATA), (t.camera_info, M.CAMERA_INFO, SENSOR_DATA),
        (config.command_topic, command_type, DEFAULT), (t.transition, M.FLOAT64_ARRAY, TRANSITION_QOS),
        (t.estop, M.BOOL, DEFAULT), (t.estop_reset, M.BOOL, DEFAULT), (t.holding, M.BOOL, DEFAULT),
        (t.target, M.FLOAT64_ARRAY, DEFAULT), (t.teleop_twist, M.TWIST, DEFAULT),
        (t.teleop_joint_delta, M.FLOAT64_ARRAY, DEFAULT),
    ]


class BagSeries:
    """One rosbag2 per episode, opened by the episode's first transition (with the last
    ``preroll_s`` of messages before it) and closed when the episode ends. Between episodes
    messages only wait in the pre-roll, so no bag exists without an episode."""

    def __init__(self, root: Path, storage: str, topics: list[tuple[str, str, Any]], preroll_s: float = 2.0) -> None:
        from rosbags.rosbag2 import StoragePlugin

        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"storage {storage!r} is not supported; use mcap or sqlite3")
        self.root, self.plugin, self.topics = root, plugins[storage], topics
        self.index = 0
        self.writer: Any = None
        self.connections: dict[str, Any] = {}
        self.preroll_ns = int(preroll_s * 1e9)
        self.preroll: collections.deque[tuple[str, bytes, int]] = collections.deque()

    def write(self, topic: str, data: bytes, stamp_ns: int, starts_episode: bool = False) -> None:
        """Store one message; ``starts_episode`` (a transition) opens the episode's bag if none is open."""
        if self.writer is None:
            while self.preroll and self.preroll[0][2] < stamp_ns - self.preroll_ns:
                self.preroll.popleft()
            if not starts_episode:
                self.preroll.append((topic, data, stamp_ns))
                return
            from rosbags.rosbag2 import Writer

            self.writer = Writer(self.root / f"episode_{self.index:06d}", version=9, storage_plugin=self.plugin)
            self.writer.open()
            self.connections = {name: self.writer.add_connection(name, ros_type, typestore=M.TYPESTORE)
                                for name, ros_type, _ in self.topics}
            while self.preroll:
                name, earlier, stamp = self.preroll.popleft()
                self.writer.write(self.connections[name], stamp, earlier)
        self.writer.write(self.connections[topic], stamp_ns, data)

    def end_episode(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer, self.index = None, self.index + 1


class Recorder:
    def __init__(self, params: RecorderParams, config: RobotConfig, node_name: str, namespace: str = "/") -> None:
        from robot_rl.data.lerobot import LeRobotWriter

        self.params, self.config = params, config
        self.log = setup_logging(node_name)
        self.warn = Throttle(self.log)
        out = check_writable(Path(params.output) / time.strftime("%Y-%m-%d_%H-%M-%S"))
        self.output = out
        self.topics = recorded_topics(config)
        self.bags = BagSeries(out / "rosbag2", params.storage, self.topics, params.preroll_s)
        self.lerobot_root = out / "lerobot"
        self.writer_class = LeRobotWriter
        self.dataset: Any = None  # created on the first transition, when sizes are known
        self.image: np.ndarray | None = None
        self.camera_key = f"observation.images.{Path(config.topics.image).parent.name or 'camera'}"
        # Files are written on one thread of their own: sqlite3 objects must stay on the thread
        # that made them, and slow disks must not delay the transport's other callbacks.
        self.failure: str | None = None
        self.queue: queue.Queue[tuple[str, bytes, int] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._write_loop, name="recorder-writer", daemon=True)
        self.thread.start()
        self.transport = t = make_transport(node_name, params.backend, namespace)
        for topic, ros_type, qos in self.topics:
            t.subscribe(topic, ros_type, self._callback(topic), qos, raw=True)
        self.log.info("recording %d topics to %s (%s) and %s", len(self.topics), out / "rosbag2", params.storage,
                      self.lerobot_root)

    def _callback(self, topic: str) -> Any:
        def on_message(data: bytes) -> None:
            self.queue.put((topic, data, M.now_ns()))  # receive time, as ros2 bag record stamps messages

        return on_message

    def _write_loop(self) -> None:
        try:
            self._drain()
        except Exception as error:  # reported by the main loop, which stops the node
            self.failure = f"{type(error).__name__}: {error}"
            self.log.exception("recording failed")
        finally:
            if self.dataset is not None:
                self.dataset.close(self.params.task)
            self.bags.end_episode()

    def _drain(self) -> None:
        while (item := self.queue.get()) is not None:
            topic, data, stamp = item
            self.bags.write(topic, data, stamp, starts_episode=topic == self.config.topics.transition)
            if topic == self.config.topics.transition:
                self.on_transition(from_message(M.decode(data, M.FLOAT64_ARRAY)))
            elif topic == self.config.topics.image and self.params.images:
                self.image = np.array(M.image_to_numpy(M.decode(data, M.IMAGE)))

    def _open_dataset(self, t: Transition) -> None:
        from robot_rl.data.lerobot import Feature

        joints = tuple(self.config.arm_joints) + ("gripper_width",)
        features = {
            "observation.state": Feature("float32", (len(t.state),), joints),
            "observation.policy": Feature("float32", (len(t.observation),)),
            "action": Feature("float32", (len(t.action),)),
            "policy_action": Feature("float32", (len(t.policy_action),)),
            "intervention": Feature("bool", (1,)), "next.reward": Feature("float32", (1,)),
            "next.done": Feature("bool", (1,)), "next.success": Feature("bool", (1,)), "hold": Feature("bool", (1,)),
            "weights_version": Feature("int64", (1,)),
        }
        if self.image is not None:
            features[self.camera_key] = Feature("image", self.image.shape)
        self.dataset = self.writer_class(self.lerobot_root, self.params.fps, features, self.config.name)

    def on_transition(self, t: Transition) -> None:
        if self.dataset is None:
            self._open_dataset(t)
        frame = {"observation.state": t.state, "observation.policy": t.observation, "action": t.action,
                 "policy_action": t.policy_action, "intervention": t.intervention, "next.reward": t.reward,
                 "next.done": t.done, "next.success": t.success, "hold": t.hold,
                 "weights_version": t.weights_version}
        if self.camera_key in self.dataset.features:
            if self.image is None or self.image.shape != tuple(self.dataset.features[self.camera_key].shape):
                self.warn.warning("image", "no camera image for step %d; repeating a black frame", t.step)
                frame[self.camera_key] = np.zeros(self.dataset.features[self.camera_key].shape, np.uint8)
            else:
                frame[self.camera_key] = self.image
        self.dataset.add_frame(frame)
        if t.done:
            index = self.dataset.end_episode(self.params.task)
            self.bags.end_episode()
            self.log.info("episode %s written (%d frames so far)", index, self.dataset.total_frames)

    def close(self) -> None:
        self.transport.close()  # no callback runs after this
        self.queue.put(None)
        self.thread.join()  # the writer thread finishes the open episode and the bag


def main(argv: list[str] | None = None) -> int:
    params, node = parse(RecorderParams, argv, "recorder", __doc__.split("\n\n")[0])
    shutdown = Shutdown()
    recorder = Recorder(params, load_robot(params.robot), node.name, node.namespace)
    try:
        while not shutdown.wait(0.2):
            if recorder.failure:
                raise NodeError(f"recording stopped: {recorder.failure}; check the output directory and disk space")
    finally:
        recorder.close()
    return 0


def entry() -> None:
    raise SystemExit(run(main))


if __name__ == "__main__":
    entry()
