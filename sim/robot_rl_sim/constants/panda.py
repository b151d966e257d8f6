"""Constants for the Franka-Panda-like arm in ``models/panda``.

Names here must match ``models/panda/panda.xml`` and the ``scene_*.xml`` files.
No mujoco import: this module is safe to use anywhere.
"""

from __future__ import annotations

# Sources: Franka Emika Panda datasheet / published DH parameters (Craig
# convention) for kinematics, joint limits and joint torque limits; the home
# pose is the usual "ready" configuration of the Panda.

MODEL_DIR = "panda"  # relative to the repository's models/ folder

ARM_JOINTS: tuple[str, ...] = tuple(f"joint{i}" for i in range(1, 8))
FINGER_JOINTS: tuple[str, ...] = ("finger_joint1", "finger_joint2")
ARM_ACTUATORS: tuple[str, ...] = tuple(f"actuator{i}" for i in range(1, 8))
GRIPPER_ACTUATOR = "gripper"

# Gripper command (per-finger opening in metres): 0.04 = fully open, 0.0 = closed.
GRIPPER_OPEN = 0.04
GRIPPER_CLOSED = 0.0

# Home pose: 7 arm joint angles (rad) followed by the gripper open value.
# Arm ctrl = HOME_QPOS[:7], gripper ctrl = HOME_QPOS[7]; both finger joints
# start at HOME_QPOS[7]. At this pose the gripper points straight down.
HOME_QPOS: tuple[float, ...] = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, GRIPPER_OPEN)
HOME_TCP = (0.307, 0.0, 0.487)  # ee_site world position at HOME_QPOS (m)

# Arm joints with the gripper pointing down 12 cm above the table at (0.45, 0): where tabletop
# tasks start, so exploration begins near the objects (solved by damped least squares IK).
TABLE_READY_QPOS: tuple[float, ...] = (0.0, 0.1125, 0.0, -2.5686, 0.0, 2.6811, 0.7854)
TABLE_READY_TCP = (0.45, 0.0, 0.12)

# Arm joint limits (rad), joint1..joint7.
JOINT_LOWER: tuple[float, ...] = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
JOINT_UPPER: tuple[float, ...] = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
TORQUE_LIMITS: tuple[float, ...] = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)  # N*m
FINGER_RANGE = (0.0, 0.04)  # m, per finger

IK_TILT_WEIGHT = 0.1
"""Weight of the keep-the-tool-pointing-down rows in the arm's least-squares IK (ArmIK and the
``"ee"`` action space): a 0.1 rad tilt costs about as much as 1 cm of tip position."""

EE_SITE = "ee_site"  # TCP between the fingertips, z axis out of the gripper
LEFT_PAD_SITE = "left_pad"
RIGHT_PAD_SITE = "right_pad"
FRONT_CAMERA = "front"
WRIST_CAMERA = "wrist"

# Scene files, relative to models/panda.
SCENES: dict[str, str] = {
    "reach": "scene_reach.xml",
    "push": "scene_push.xml",
    "lift": "scene_lift.xml",
}
TIMESTEP = 0.002  # s, set by every panda scene

TABLE_Z = 0.0  # the floor plane named "table" is the table top
CUBE_HALF = 0.025  # m, half edge of the red cube (push/lift scenes)
CUBE_MASS = 0.1  # kg
CUBE_START = (0.5, 0.0, CUBE_HALF)
TARGET_START: dict[str, tuple[float, float, float]] = {
    "reach": (0.5, 0.0, 0.3),
    "push": (0.6, 0.1, 0.0),
    "lift": (0.5, 0.0, 0.2),
}
