"""ROS 2 messages as rosbags dataclasses, their CDR bytes, and numpy conversions.

Every backend moves CDR bytes (the ROS 2 serialised-message format, also what rosbag2 stores),
produced and read here with ``rosbags``' generated (de)serialisers: ~8 µs for a JointState and
~0.1 ms for a 224×224 RGB image, where cyclonedds' pure-Python path takes ~40 µs and ~17 ms.
Nodes build messages with the helpers below and never touch DDS types.

    msg = joint_state(["joint1"], position=[0.1])          # sensor_msgs/msg/JointState
    raw = encode(msg)                                      # bytes: 00 01 00 00 + CDR, padded to 4
    back = decode(raw, "sensor_msgs/msg/JointState")
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_typestore

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
"""Message definitions (identical for our types from Humble on); also used to write bags."""

JOINT_STATE = "sensor_msgs/msg/JointState"
IMAGE = "sensor_msgs/msg/Image"
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
FLOAT64_ARRAY = "std_msgs/msg/Float64MultiArray"
FLOAT32_ARRAY = "std_msgs/msg/Float32MultiArray"
BOOL = "std_msgs/msg/Bool"
TWIST = "geometry_msgs/msg/Twist"
MESSAGE_TYPES = (JOINT_STATE, IMAGE, JOINT_TRAJECTORY, FLOAT64_ARRAY, FLOAT32_ARRAY, BOOL, TWIST)
"""The ROS 2 types the nodes exchange."""

_T = TYPESTORE.types
Time = _T["builtin_interfaces/msg/Time"]
Duration = _T["builtin_interfaces/msg/Duration"]
Header = _T["std_msgs/msg/Header"]
JointState = _T[JOINT_STATE]
Image = _T[IMAGE]
JointTrajectory = _T[JOINT_TRAJECTORY]
JointTrajectoryPoint = _T["trajectory_msgs/msg/JointTrajectoryPoint"]
Float64MultiArray = _T[FLOAT64_ARRAY]
Float32MultiArray = _T[FLOAT32_ARRAY]
MultiArrayLayout = _T["std_msgs/msg/MultiArrayLayout"]
MultiArrayDimension = _T["std_msgs/msg/MultiArrayDimension"]
Bool = _T[BOOL]
Twist = _T[TWIST]
Vector3 = _T["geometry_msgs/msg/Vector3"]

_EMPTY = np.zeros(0)


def encode(msg: Any) -> bytes:
    """CDR bytes of a message, with the encapsulation header, zero-padded to a multiple of 4
    bytes as cyclonedds pads samples it writes."""
    raw = bytes(TYPESTORE.serialize_cdr(msg, msg.__msgtype__))
    return raw + b"\0" * (-len(raw) % 4)


def decode(raw: bytes | memoryview, ros_type: str) -> Any:
    """The message of type ``ros_type`` (``pkg/msg/Type``) in CDR bytes ``raw``."""
    return TYPESTORE.deserialize_cdr(raw, ros_type)


# -- time -----------------------------------------------------------------------------------------

def now_ns() -> int:
    """Wall-clock time in ns since the epoch: what ROS 2 puts in header stamps."""
    return time.time_ns()


def stamp(ns: int | None = None) -> Any:
    """builtin_interfaces/Time for ``ns`` (default: now)."""
    ns = now_ns() if ns is None else ns
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def stamp_ns(header: Any) -> int:
    """Nanoseconds since the epoch in a std_msgs/Header."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def header(ns: int | None = None, frame_id: str = "") -> Any:
    return Header(stamp=stamp(ns), frame_id=frame_id)


# -- constructors ---------------------------------------------------------------------------------

def _f64(values: Sequence[float] | np.ndarray | None) -> np.ndarray:
    return _EMPTY if values is None else np.asarray(values, dtype=np.float64).reshape(-1)


def joint_state(names: Sequence[str], position: Sequence[float] | np.ndarray,
                velocity: Sequence[float] | np.ndarray | None = None,
                effort: Sequence[float] | np.ndarray | None = None,
                stamp_ns: int | None = None, frame_id: str = "") -> Any:
    """sensor_msgs/JointState: positions (rad or m), velocities (rad/s or m/s), efforts (N·m or N)."""
    return JointState(header=header(stamp_ns, frame_id), name=list(names), position=_f64(position),
                      velocity=_f64(velocity), effort=_f64(effort))


def _layout(dims: Sequence[tuple[str, int]], count: int) -> Any:
    """std_msgs/MultiArrayLayout of (label, size) pairs, outermost first, over ``count`` values."""
    layout, stride = [], count
    for label, size in dims:
        layout.append(MultiArrayDimension(label=label, size=int(size), stride=int(stride)))
        stride = stride // max(int(size), 1)
    return MultiArrayLayout(dim=layout, data_offset=0)


def float64_array(values: Sequence[float] | np.ndarray, dims: Sequence[tuple[str, int]] = ()) -> Any:
    """std_msgs/Float64MultiArray of ``values``; ``dims`` are (label, size) pairs, outermost first."""
    data = _f64(values)
    return Float64MultiArray(layout=_layout(dims, len(data)), data=data)


def float32_array(values: Sequence[float] | np.ndarray, dims: Sequence[tuple[str, int]] = ()) -> Any:
    """std_msgs/Float32MultiArray of ``values`` flattened (bulk data such as network weights: half
    the bytes of float64); ``dims`` as for :func:`float64_array`."""
    data = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    return Float32MultiArray(layout=_layout(dims, len(data)), data=data)


def boolean(value: bool) -> Any:
    return Bool(data=bool(value))


def twist(linear: Sequence[float] = (0.0, 0.0, 0.0), angular: Sequence[float] = (0.0, 0.0, 0.0)) -> Any:
    """geometry_msgs/Twist: linear (m/s) and angular (rad/s) velocity."""
    return Twist(linear=Vector3(x=float(linear[0]), y=float(linear[1]), z=float(linear[2])),
                 angular=Vector3(x=float(angular[0]), y=float(angular[1]), z=float(angular[2])))


def joint_trajectory(names: Sequence[str], positions: Sequence[Sequence[float]] | np.ndarray,
                     times_s: Sequence[float], stamp_ns: int | None = None) -> Any:
    """trajectory_msgs/JointTrajectory through ``positions`` float[K, J] reached ``times_s`` [K] after the stamp."""
    points = []
    for q, t in zip(np.asarray(positions, dtype=np.float64).reshape(len(times_s), -1), times_s):
        ns = int(round(t * 1e9))
        points.append(JointTrajectoryPoint(positions=q.copy(), velocities=_EMPTY, accelerations=_EMPTY,
                                           effort=_EMPTY, time_from_start=Duration(sec=ns // 1_000_000_000,
                                                                                   nanosec=ns % 1_000_000_000)))
    return JointTrajectory(header=header(stamp_ns), joint_names=list(names), points=points)


def image(rgb: np.ndarray, stamp_ns: int | None = None, frame_id: str = "") -> Any:
    """sensor_msgs/Image (encoding rgb8) of uint8[H, W, 3]."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image() takes uint8[H, W, 3], got {rgb.dtype}{list(rgb.shape)}")
    h, w, _ = rgb.shape
    return Image(header=header(stamp_ns, frame_id), height=h, width=w, encoding="rgb8", is_bigendian=0,
                 step=3 * w, data=np.ascontiguousarray(rgb).reshape(-1))


# -- numpy views ----------------------------------------------------------------------------------

def image_to_numpy(msg: Any) -> np.ndarray:
    """uint8[H, W, 3] of an rgb8/bgr8 sensor_msgs/Image (bgr8 is flipped to RGB)."""
    if msg.encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"unsupported image encoding {msg.encoding!r}; publish rgb8 or bgr8")
    rows = np.asarray(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
    rgb = rows[:, :3 * msg.width].reshape(msg.height, msg.width, 3)
    return rgb[..., ::-1] if msg.encoding == "bgr8" else rgb


def time_from_start_s(point: Any) -> float:
    return point.time_from_start.sec + 1e-9 * point.time_from_start.nanosec

