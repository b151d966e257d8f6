"""``fake_arm``: the Panda of ``models/`` simulated in MuJoCo behind ros2_control-shaped topics.

    robot-rl-fake-arm --ros-args -p robot:=real/config/panda.yaml -p camera_hz:=30.0
    robot-rl-fake-arm --ros-args -p robot:=real/config/panda.yaml -p scene:=panda/scene_push.xml -p cube:="[0.5, 0.0]"
    ros2 run robot_rl_ros fake_arm --ros-args -p robot:=/abs/path/panda.yaml      # with ROS 2

Publishes ``/joint_states`` (500 Hz) and, like an RGB-D camera driver, the colour image
(``/camera/front/image_raw``), the registered depth image (``.../depth/image_raw``, 32FC1 in
metres) and ``.../camera_info`` (K of the MJCF camera), all three with the same stamp (30 Hz);
accepts position commands on ``/<controller>/commands`` (Float64MultiArray: arm joints then
gripper opening) and ``/<controller>/joint_trajectory``. Like a careful driver it clamps commands
to the joint limits, ignores malformed ones, holds its position when commands go stale, and
latches ``/estop`` until ``/estop/reset``. Fault switches make it misbehave on purpose:
``delay_s`` (late states), ``drop_rate`` (lost states), ``freeze`` or a true on
``/fake_arm/freeze`` (the same state again and again).

Scenes with a cube (``panda/scene_push.xml``, ``panda/scene_lift.xml``) start it at ``cube`` or
at a seeded random place in ``cube_range``; the target marker stands at ``target`` (or the latest
goal on the target topic). Like a real robot it tells nobody where the cube is: only the camera
shows it (``ground_truth`` writes it to a file, for tests and benchmarks).
"""

from __future__ import annotations

import collections
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_rl_ros import messages as M
from robot_rl_ros.config import RobotConfig, load_robot
from robot_rl_ros.node import Rate, Shutdown, Throttle, run, setup_logging
from robot_rl_ros.params import param, parse
from robot_rl_ros.qos import DEFAULT, LATCHED, SENSOR_DATA
from robot_rl_ros.transport import make_transport


@dataclass(frozen=True)
class FakeArmParams:
    robot: str = param(doc="robot config YAML, e.g. real/config/panda.yaml")
    state_hz: float = param(500.0, "joint state rate (Hz); physics runs at the model's timestep regardless")
    camera_hz: float = param(30.0, "camera image rate (Hz); 0 turns the camera off")
    camera: str = param("", "MJCF camera to render; empty: the robot config's camera.name")
    image_width: int = param(0, "image width (pixels); 0: the robot config's camera.width")
    image_height: int = param(0, "image height (pixels); 0: the robot config's camera.height")
    depth: bool = param(True, "with the colour image also publish the depth image (32FC1, metres) and camera info")
    scene: str = param("", "MJCF scene to simulate (relative to models/), e.g. panda/scene_push.xml; empty: the "
                           "robot config's model")
    initial_arm: tuple[float, ...] = param((), "arm joint angles to start from (rad); empty: the scene's keyframe")
    cube: tuple[float, ...] = param((), "where the cube starts on the table: [x, y] or [x, y, yaw] (m, rad); "
                                        "empty: drawn with the seed in cube_range, any yaw")
    cube_range: tuple[float, ...] = param((0.4, -0.15, 0.6, 0.15), "[x_low, y_low, x_high, y_high] of a drawn "
                                                                   "cube start (m): the tasks' range")
    ground_truth: str = param("", "simulator only: append the cube's true centre as CSV lines (wall time s, x, "
                                  "y, z) at 20 Hz to this file, for tests and benchmarks; no topic carries it")
    command_timeout_s: float = param(0.5, "hold the measured position when no command came for this long (s)")
    delay_s: float = param(0.0, "fault: publish each joint state this late (s)")
    drop_rate: float = param(0.0, "fault: drop this fraction of joint states")
    freeze: bool = param(False, "fault: repeat the first joint state forever")
    initial_noise: float = param(0.0, "uniform noise on the initial arm joints (rad)")
    seed: int = param(0, "seed of the initial noise and the drops")
    target: tuple[float, ...] = param((), "position of the scene's target marker [x, y, z] (m)")
    backend: str = param("auto", "transport: auto, cyclone or rclpy")


class Commands:
    """Latest command from the callbacks, read by the physics loop (one lock, tiny sections)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.target: np.ndarray | None = None
        self.trajectory: tuple[float, np.ndarray, list[tuple[float, np.ndarray]]] | None = None
        self.received = -np.inf
        self.expires = -np.inf
        self.estop = False
        self.freeze = False
        self.marker: np.ndarray | None = None


class FakeArm:
    def __init__(self, params: FakeArmParams, config: RobotConfig, node_name: str, namespace: str = "/") -> None:
        import mujoco

        from robot_rl_sim.mjcf import load_model

        self.mujoco, self.params, self.config = mujoco, params, config
        self.log = setup_logging(node_name)
        self.warn = Throttle(self.log)
        self.scene = params.scene or config.model
        self.model = load_model(self.scene)
        self.data = mujoco.MjData(self.model)
        if self.model.nkey:
            mujoco.mj_resetDataKeyframe(self.model, self.data, 0)
        self.names = list(config.arm_joints + config.gripper_joints)
        joint = [self.model.joint(n) for n in self.names]
        self.qpos_idx = np.array([j.qposadr[0] for j in joint])
        self.qvel_idx = np.array([j.dofadr[0] for j in joint])
        command_joints = [self.model.joint(n).id for n in config.command_joints]
        trn = self.model.actuator_trnid[:, 0]
        missing = [n for n, j in zip(config.command_joints, command_joints) if j not in trn]
        if missing:
            raise ValueError(f"{config.model} has no actuator for {missing}; check arm_joints in the robot config")
        self.ctrl_idx = np.array([int(np.nonzero(trn == j)[0][0]) for j in command_joints])
        gripper = config.limits.gripper if config.gripper_command else ()
        self.low = np.array(config.limits.position_lower + gripper[:1])
        self.high = np.array(config.limits.position_upper + gripper[1:])
        rng = np.random.default_rng(params.seed)
        arm = self.qpos_idx[:len(config.arm_joints)]
        if params.initial_arm:
            if len(params.initial_arm) != len(arm):
                raise ValueError(f"initial_arm has {len(params.initial_arm)} angles for {len(arm)} arm joints")
            self.data.qpos[arm] = params.initial_arm
        self.data.qpos[arm] += rng.uniform(-params.initial_noise, params.initial_noise, len(arm))
        self.cube_qpos = self._place_cube(rng)
        """Start index of the cube's free joint in qpos (None: the scene has no cube)."""
        if params.ground_truth and self.cube_qpos is None:
            raise ValueError(f"ground_truth: {self.scene} has no cube_joint whose position could be written")
        mujoco.mj_forward(self.model, self.data)
        self.hold = self.measured_command()
        self.data.ctrl[self.ctrl_idx] = self.hold
        self.commands = Commands()
        if params.target and self.model.nmocap:
            self.data.mocap_pos[0] = params.target
        self._drop = random.Random(params.seed)

        self.transport = make_transport(node_name, params.backend, namespace)
        topics = config.topics
        # Reliable, like joint_state_broadcaster: it matches reliable and best-effort readers.
        self.state_pub = self.transport.publisher(topics.joint_states, M.JOINT_STATE, DEFAULT)
        self.camera = params.camera or config.camera.name
        self.image_size = (params.image_height or config.camera.height, params.image_width or config.camera.width)
        self.image_pub = self.depth_pub = self.info_pub = None
        if params.camera_hz > 0:
            self.image_pub = self.transport.publisher(topics.image, M.IMAGE, SENSOR_DATA)
            if params.depth:
                self.depth_pub = self.transport.publisher(topics.depth, M.IMAGE, SENSOR_DATA)
                self.info_pub = self.transport.publisher(topics.camera_info, M.CAMERA_INFO, SENSOR_DATA)
        t = self.transport
        t.subscribe(f"/{config.controller}/commands", M.FLOAT64_ARRAY, self.on_commands)
        t.subscribe(f"/{config.controller}/joint_trajectory", M.JOINT_TRAJECTORY, self.on_trajectory)
        t.subscribe(topics.estop, M.BOOL, self.on_estop)
        t.subscribe(topics.estop_reset, M.BOOL, self.on_estop_reset)
        t.subscribe("~/freeze", M.BOOL, self.on_freeze)
        t.subscribe(topics.target, M.FLOAT64_ARRAY, self.on_marker, LATCHED)

    def _place_cube(self, rng: np.random.Generator) -> int | None:
        """Put the scene's cube (free joint ``cube_joint``) at rest on the table at ``cube`` or at a
        random start in ``cube_range``; its qpos start index, or None without a cube."""
        p, model = self.params, self.model
        if self.mujoco.mj_name2id(model, self.mujoco.mjtObj.mjOBJ_JOINT, "cube_joint") < 0:
            if p.cube:
                raise ValueError(f"cube: {self.scene} has no cube_joint; simulate a scene with a cube, e.g. "
                                 "scene:=panda/scene_push.xml")
            return None
        if len(p.cube) not in (0, 2, 3) or len(p.cube_range) != 4:
            raise ValueError(f"cube takes [x, y] or [x, y, yaw] and cube_range [x_low, y_low, x_high, y_high]; got "
                             f"{list(p.cube)} and {list(p.cube_range)}")
        low, high = np.array(p.cube_range[:2]), np.array(p.cube_range[2:])
        xy = np.array(p.cube[:2]) if p.cube else rng.uniform(low, high)
        yaw = p.cube[2] if len(p.cube) == 3 else rng.uniform(-np.pi, np.pi)
        table = self.mujoco.mj_name2id(model, self.mujoco.mjtObj.mjOBJ_GEOM, "table")
        z = (model.geom_pos[table][2] if table >= 0 else 0.0) + model.geom("cube").size[2]
        adr = int(model.joint("cube_joint").qposadr[0])
        self.data.qpos[adr:adr + 7] = [xy[0], xy[1], z, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        self.log.info("cube starts at (%.3f, %.3f) m, yaw %.2f rad", xy[0], xy[1], yaw)
        return adr

    def measured_command(self) -> np.ndarray:
        """float64[C]: the command that holds the arm (and gripper) where it is now."""
        n = len(self.config.arm_joints)
        q = self.data.qpos[self.qpos_idx]
        held = q[:n] if not self.config.gripper_command else np.append(q[:n], q[n])
        return np.clip(held, self.low, self.high)

    # -- callbacks (transport thread) ------------------------------------------------------------

    def _valid(self, values: np.ndarray, source: str) -> np.ndarray | None:
        if values.shape != self.low.shape:
            self.warn.warning(f"size-{source}", "ignoring %s with %d values; expected %d (%s)", source, values.size,
                              self.low.size, ", ".join(self.config.command_joints))
            return None
        if not np.all(np.isfinite(values)):
            self.warn.warning(f"nan-{source}", "ignoring %s with non-finite values", source)
            return None
        clipped = np.clip(values, self.low, self.high)
        if not np.array_equal(clipped, values):
            self.warn.warning(f"limit-{source}", "clamped %s to the joint limits", source)
        return clipped

    def on_commands(self, msg: Any) -> None:
        target = self._valid(np.asarray(msg.data, dtype=np.float64), "command")
        if target is not None:
            now = time.monotonic()
            with self.commands.lock:
                self.commands.target, self.commands.trajectory = target, None
                self.commands.received, self.commands.expires = now, now + self.params.command_timeout_s

    def on_trajectory(self, msg: Any) -> None:
        order = {name: i for i, name in enumerate(msg.joint_names)}
        if sorted(order) != sorted(self.config.command_joints) or not msg.points:
            self.warn.warning("trajectory", "ignoring trajectory for joints %s with %d points; expected joints %s",
                              list(msg.joint_names), len(msg.points), list(self.config.command_joints))
            return
        index = [order[n] for n in self.config.command_joints]
        points = []
        for p in msg.points:
            positions = np.asarray(p.positions, dtype=np.float64)
            q = self._valid(positions[index] if len(positions) == len(index) else positions, "trajectory point")
            if q is None:
                return
            points.append((M.time_from_start_s(p), q))
        now = time.monotonic()
        with self.commands.lock:
            start = self.commands.target if self.commands.target is not None else self.hold
            self.commands.trajectory = (now, start.copy(), points)
            self.commands.received = now
            self.commands.expires = now + points[-1][0] + self.params.command_timeout_s

    def on_estop(self, msg: Any) -> None:
        if msg.data and not self.commands.estop:
            self.log.warning("e-stop latched: holding position until %s", self.config.topics.estop_reset)
            self.commands.estop = True

    def on_estop_reset(self, msg: Any) -> None:
        if msg.data and self.commands.estop:
            self.log.info("e-stop released")
            with self.commands.lock:
                self.commands.estop, self.commands.target, self.commands.trajectory = False, None, None

    def on_freeze(self, msg: Any) -> None:
        self.commands.freeze = bool(msg.data)

    def on_marker(self, msg: Any) -> None:
        if len(msg.data) == 3:
            self.commands.marker = np.asarray(msg.data, dtype=np.float64)

    # -- physics loop ----------------------------------------------------------------------------

    def _target(self, now: float) -> np.ndarray | None:
        """The commanded position now, or None when the arm must hold (e-stop, stale commands)."""
        c = self.commands
        with c.lock:
            if c.estop or now > c.expires:
                return None
            if c.trajectory is None:
                return c.target
            start_time, start, points = c.trajectory
        t, previous, q = now - start_time, (0.0, start), points[-1][1]
        for time_point, position in points:  # piecewise-linear through the points, as a JTC interpolates
            if t <= time_point:
                span = max(time_point - previous[0], 1e-9)
                q = previous[1] + (position - previous[1]) * np.clip((t - previous[0]) / span, 0.0, 1.0)
                break
            previous = (time_point, position)
        return q

    def _state_message(self) -> bytes:
        d = self.data
        effort = d.qfrc_actuator[self.qvel_idx]
        return M.encode(M.joint_state(self.names, d.qpos[self.qpos_idx], d.qvel[self.qvel_idx], effort))

    def spin(self, shutdown: Shutdown) -> None:
        mujoco, model, data = self.mujoco, self.model, self.data
        timestep = model.opt.timestep
        rate = Rate(self.params.state_hz)
        start, steps = time.perf_counter(), 0
        pending: collections.deque[tuple[float, bytes]] = collections.deque()
        frozen: bytes | None = None
        camera = self._start_camera(shutdown) if self.image_pub is not None else None
        truth = open(self.params.ground_truth, "a", buffering=1) if self.params.ground_truth else None
        next_truth = 0.0
        holding = True
        self.log.info("simulating %s: %s at %g Hz on %s", self.config.name, self.config.topics.joint_states,
                      self.params.state_hz, self.config.command_topic)
        try:
            while not shutdown:
                now = time.monotonic()
                target = self._target(now)
                if target is None and not holding:
                    self.hold = self.measured_command()  # stop where the arm is, not where it was heading
                    self.log.info("commands stale or e-stop: holding position")
                holding = target is None
                data.ctrl[self.ctrl_idx] = self.hold if target is None else target
                if self.commands.marker is not None and model.nmocap:
                    data.mocap_pos[0] = self.commands.marker
                # Simulated time follows the wall clock; after a stall it catches up at most 50 ms.
                due = int((time.perf_counter() - start) / timestep)
                for _ in range(min(due - steps, 25)):
                    mujoco.mj_step(model, data)
                steps = due
                if camera is not None:
                    camera.snapshot(data)
                if truth is not None and now >= next_truth:
                    next_truth = now + 0.05
                    x, y, z = data.qpos[self.cube_qpos:self.cube_qpos + 3]
                    truth.write(f"{time.time():.4f},{x:.5f},{y:.5f},{z:.5f}\n")
                raw = self._state_message()
                if self.params.freeze or self.commands.freeze:
                    frozen = frozen or raw
                    raw = frozen
                else:
                    frozen = None
                if self._drop.random() >= self.params.drop_rate:
                    pending.append((now + self.params.delay_s, raw))
                while pending and pending[0][0] <= time.monotonic():
                    self.state_pub.publish_raw(pending.popleft()[1])
                rate.sleep(shutdown)
        finally:
            shutdown.event.set()  # also when the loop failed: the camera thread stops with it
            if truth is not None:
                truth.close()
            if camera is not None:
                # The camera thread frees its OpenGL context itself; left running into interpreter
                # exit, it crashed the process (SIGSEGV) about every other stop.
                camera.thread.join(10.0)

    def _start_camera(self, shutdown: Shutdown) -> CameraStream:
        camera = CameraStream(self, shutdown)
        camera.thread.start()
        return camera

    def close(self) -> None:
        self.transport.close()


class CameraStream:
    """Renders the scene on its own thread (and OpenGL context) so images never stall the
    500 Hz state loop; the loop hands it copies of the pose. With depth on, it renders RGB-D as
    the perception training data does (``DepthRenderer``: no multisampling)."""

    def __init__(self, arm: FakeArm, shutdown: Shutdown) -> None:
        self.arm, self.shutdown = arm, shutdown
        self.lock = threading.Lock()
        self.pose: tuple[int, np.ndarray, np.ndarray] | None = None
        """(wall time ns, qpos, mocap_pos) of the newest physics state."""
        self.thread = threading.Thread(target=self.run, name="camera", daemon=True)

    def snapshot(self, data: Any) -> None:
        with self.lock:
            self.pose = (M.now_ns(), data.qpos.copy(), data.mocap_pos.copy())

    def run(self) -> None:
        import copy

        from robot_rl_sim.rendering import DepthRenderer, SceneRenderer, camera_intrinsics

        arm, p = self.arm, self.arm.params
        (height, width), name = arm.image_size, arm.camera
        try:
            # Its own copy of the model: a renderer sizes the model's offscreen buffer.
            renderer = (DepthRenderer if arm.depth_pub is not None else SceneRenderer)(
                copy.copy(arm.model), height, width)
            intrinsics = camera_intrinsics(arm.model, name, height, width)
        except Exception as error:  # no OpenGL, no such camera: the arm runs on without images
            arm.log.error("camera off: %s", error)
            return
        try:
            rate = Rate(p.camera_hz)
            while not self.shutdown:
                with self.lock:
                    pose = self.pose
                if pose is not None:
                    stamp, qpos, mocap = pose
                    if arm.depth_pub is not None:
                        rgb, depth, _ = renderer.render_rgbd(name, qpos[None], mocap[None])
                        arm.depth_pub.publish(M.depth_image(depth[0], stamp, name))
                        arm.info_pub.publish(M.camera_info(height, width, intrinsics, stamp, name))
                    else:
                        rgb = renderer.render(name, qpos[None], mocap[None])
                    arm.image_pub.publish(M.image(rgb[0], stamp, name))
                rate.sleep(self.shutdown)
        finally:
            renderer.close()


def main(argv: list[str] | None = None) -> int:
    params, node = parse(FakeArmParams, argv, "fake_arm", __doc__.split("\n\n")[0])
    shutdown = Shutdown()
    arm = FakeArm(params, load_robot(params.robot), node.name, node.namespace)
    try:
        arm.spin(shutdown)
    finally:
        arm.close()
    return 0


def entry() -> None:
    raise SystemExit(run(main))


if __name__ == "__main__":
    entry()
