"""Constants for the 12-DoF quadruped in ``models/quadruped``.

Names here must match ``models/quadruped/quadruped.xml`` and ``scene_walk.xml``.
No mujoco import: this module is safe to use anywhere.
"""

from __future__ import annotations

# Sources: rounded public dimensions of the Unitree Go1 / A1 class of robots
# (trunk size, hip offsets, 0.2 m thigh and calf, ~12-14 kg, joint ranges and
# motor torque limits); the stand pose is the usual hip 0 / thigh 0.9 / calf -1.8.

MODEL_DIR = "quadruped"  # relative to the repository's models/ folder
SCENE = "scene_walk.xml"
TIMESTEP = 0.004  # s, set in scene_walk.xml

LEGS: tuple[str, ...] = ("FR", "FL", "RR", "RL")
_PARTS = ("hip", "thigh", "calf")

# Joint and actuator names in actuator (and qpos) order: FR, FL, RR, RL x hip, thigh, calf.
JOINTS: tuple[str, ...] = tuple(f"{leg}_{part}_joint" for leg in LEGS for part in _PARTS)
ACTUATORS: tuple[str, ...] = tuple(f"{leg}_{part}" for leg in LEGS for part in _PARTS)

STAND_QPOS: tuple[float, ...] = (0.0, 0.9, -1.8) * 4
# Trunk height at which the feet just touch the floor in STAND_QPOS (use for resets).
STAND_HEIGHT = 0.27
# Height the trunk settles to when holding STAND_QPOS with the kp=35 actuators.
SETTLED_HEIGHT = 0.229

JOINT_LOWER: tuple[float, ...] = (-0.8, -1.0, -2.7) * 4
JOINT_UPPER: tuple[float, ...] = (0.8, 3.5, -0.9) * 4
TORQUE_LIMITS: tuple[float, ...] = (23.7, 33.5, 33.5) * 4  # N*m
KP = 35.0
KV = 0.8

TRUNK_BODY = "trunk"
ROOT_JOINT = "root"
IMU_SITE = "imu"
TRACK_CAMERA = "track"
FOOT_GEOMS: tuple[str, ...] = tuple(f"{leg}_foot" for leg in LEGS)
FOOT_SITES: tuple[str, ...] = tuple(f"{leg}_foot_site" for leg in LEGS)
TOUCH_SENSORS: tuple[str, ...] = tuple(f"{leg}_touch" for leg in LEGS)
FOOT_RADIUS = 0.02
