"""Per-robot deployment settings (``real/config/<robot>.yaml``): joints, limits, workspace,
kinematics and topic names. Loaded with the project's typed YAML loader, so an unknown key or a
wrong type is reported with its file and key before any node starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from robot_rl.configs.loading import ConfigError, load


@dataclass(frozen=True)
class Limits:
    position_lower: tuple[float, ...]
    """Lowest target of each arm joint (rad)."""
    position_upper: tuple[float, ...]
    """Highest target of each arm joint (rad)."""
    velocity: tuple[float, ...]
    """Largest speed of each arm joint's target (rad/s): consecutive commands differ by at most this × dt."""
    max_step: float = 0.1
    """Largest distance between a joint's target and its measured position (rad)."""
    gripper: tuple[float, float] = (0.0, 0.04)
    """Range of the gripper command (m, per finger)."""


@dataclass(frozen=True)
class Workspace:
    """Box the tool centre point must stay in (m, robot base frame)."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]


@dataclass(frozen=True)
class Kinematics:
    """Forward kinematics as a modified (Craig) DH chain: each joint frame is its parent's
    followed by Rx(alpha)·Tx(a)·Tz(d), then the joint's rotation about z."""

    dh: tuple[tuple[float, float, float], ...]
    """(a, d, alpha) per arm joint, metres and radians."""
    flange: float
    """Flange distance along the last joint's z (m)."""
    tcp: float
    """Tool centre point beyond the flange along z (m)."""


@dataclass(frozen=True)
class Topics:
    joint_states: str = "/joint_states"
    image: str = "/camera/front/image_raw"
    """sensor_msgs/Image rgb8 (or bgr8) of the camera."""
    depth: str = "/camera/front/depth/image_raw"
    """sensor_msgs/Image 32FC1 (metres) or 16UC1 (mm) depth, registered to the colour image."""
    camera_info: str = "/camera/front/camera_info"
    """sensor_msgs/CameraInfo of the colour (and registered depth) image: size and intrinsics K."""
    estop: str = "/estop"
    """std_msgs/Bool true latches the e-stop (fake arm and safety filter)."""
    estop_reset: str = "/estop/reset"
    """std_msgs/Bool true releases a latched e-stop."""
    target: str = "/policy/target"
    """Float64MultiArray [x, y, z] goal of reach policies (m)."""
    transition: str = "/policy/transition"
    """Float64MultiArray: one record per control step (see ``robot_rl_ros.transition``)."""
    weights: str = "/policy/weights"
    """Float32MultiArray: the learner's newest actor weights (see ``robot_rl_ros.weights``), latched."""
    holding: str = "/safety/holding"
    """std_msgs/Bool: the safety filter holds the robot this step."""
    teleop_twist: str = "/teleop/twist"
    teleop_joint_delta: str = "/teleop/joint_delta"


@dataclass(frozen=True)
class Camera:
    """The RGB-D camera perception reads: a perception model must have been trained for this
    camera and image size (checked before the policy node starts)."""

    name: str = "front"
    """Camera name (for the fake arm, the MJCF camera it renders)."""
    height: int = 128
    """Image rows (pixels) the camera driver publishes."""
    width: int = 128
    """Image columns (pixels)."""
    pose: tuple[float, ...] = ()
    """Calibrated camera-to-base pose, 16 numbers row by row, OpenCV frame (x right, y down, z
    along the view); empty: the nominal pose the perception model was trained around."""


@dataclass(frozen=True)
class Teleop:
    linear_speed: float = 0.1
    """Tool speed (m/s) a unit Twist component maps to."""
    timeout_s: float = 0.3
    """A person counts as active while their messages are younger than this (s)."""


@dataclass(frozen=True)
class RobotConfig:
    name: str
    model: str
    """MJCF scene the fake arm simulates (relative to ``models/``)."""
    arm_joints: tuple[str, ...]
    """Arm joint names, in command order."""
    gripper_joints: tuple[str, ...]
    """Finger joints in /joint_states; the gripper width is their sum (m)."""
    home: tuple[float, ...]
    """Arm joint angles observations are measured from (rad)."""
    limits: Limits
    workspace: Workspace
    kinematics: Kinematics
    controller: str = "forward_position_controller"
    """ros2_control controller receiving commands: /<controller>/commands or /<controller>/joint_trajectory."""
    command_interface: Literal["commands", "joint_trajectory"] = "commands"
    gripper_command: bool = True
    """Commands carry the gripper opening after the arm joints (m per finger)."""
    max_state_age_s: float = 0.1
    """Hold when the newest joint state is older than this (s)."""
    state_clock_synced: bool = True
    """Header stamps share this machine's clock (same host or PTP), so their age also counts."""
    topics: Topics = field(default_factory=Topics)
    camera: Camera = field(default_factory=Camera)
    teleop: Teleop = field(default_factory=Teleop)

    @property
    def command_joints(self) -> tuple[str, ...]:
        return self.arm_joints + (self.gripper_joints[:1] if self.gripper_command else ())

    @property
    def command_topic(self) -> str:
        return f"/{self.controller}/{self.command_interface}"


def load_robot(path: str | Path) -> RobotConfig:
    """Read and check a robot file; errors name the file and key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"robot config not found: {path}; pass e.g. --robot real/config/panda.yaml")
    config = load(RobotConfig, path)
    n = len(config.arm_joints)
    for name, values in (("home", config.home), ("limits.position_lower", config.limits.position_lower),
                         ("limits.position_upper", config.limits.position_upper),
                         ("limits.velocity", config.limits.velocity), ("kinematics.dh", config.kinematics.dh)):
        if len(values) != n:
            raise ConfigError(f"{path}: {name} has {len(values)} entries for {n} arm joints")
    camera = config.camera
    if camera.height < 1 or camera.width < 1:
        raise ConfigError(f"{path}: camera.height and camera.width must be at least 1, got {camera.height} and "
                          f"{camera.width}")
    if camera.pose and len(camera.pose) != 16:
        raise ConfigError(f"{path}: camera.pose has {len(camera.pose)} numbers; give the 4x4 camera-to-base "
                          "matrix row by row (16) or leave it empty")
    return config
