"""Message bytes: what we put on the wire equals rosbags' CDR and cyclonedds' own serialisation
of the ROS 2 DDS type, for every message type the nodes exchange."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_rl_ros import idl
from robot_rl_ros import messages as M

pytestmark = pytest.mark.ros

names = st.lists(st.text(st.characters(codec="ascii", min_codepoint=33, max_codepoint=126), max_size=9), max_size=4)
floats = st.lists(st.floats(allow_nan=False, width=64), max_size=5)
stamps = st.integers(0, (2**31 - 1) * 10**9)  # Time.sec is int32


def to_idl(msg: Any) -> Any:
    """The cyclonedds IdlStruct holding the same values as a rosbags message."""
    cls = idl.IDL_TYPES[msg.__msgtype__]
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(msg, f.name)
        if hasattr(value, "__msgtype__"):
            value = to_idl(value)
        elif isinstance(value, list) and value and hasattr(value[0], "__msgtype__"):
            value = [to_idl(v) for v in value]
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        values[f.name] = value
    return cls(**values)


def padded(raw: bytes) -> bytes:
    """cyclonedds' DataWriter pads every sample to a multiple of 4 bytes."""
    return raw + b"\0" * (-len(raw) % 4)


def examples() -> list[Any]:
    rng = np.random.default_rng(0)
    return [
        M.joint_state([f"joint{i}" for i in range(1, 8)], rng.normal(size=7), rng.normal(size=7), [], 1_700_000_000_123,
                      "base"),
        M.image(rng.integers(0, 255, (5, 7, 3), dtype=np.uint8), 42, "front"),
        M.depth_image(rng.uniform(0.3, 2.0, (5, 7)).astype(np.float32), 42, "front"),
        M.camera_info(5, 7, (6.5, 6.25, 3.0, 2.0), 42, "front"),
        M.joint_trajectory(["a", "bb", "ccc"], rng.normal(size=(2, 3)), [0.05, 0.1], 7),
        M.float64_array(rng.normal(size=6), [("rows", 2), ("cols", 3)]),
        M.float32_array(rng.normal(size=5), [("weights", 5)]),
        M.boolean(True),
        M.twist((0.1, -0.2, 0.3), (0.0, 0.5, -1.0)),
    ]


@pytest.mark.parametrize("msg", examples(), ids=lambda m: m.__msgtype__)
def test_encode_matches_rosbags_and_cyclonedds(msg: Any) -> None:
    raw = M.encode(msg)
    assert raw == padded(bytes(M.TYPESTORE.serialize_cdr(msg, msg.__msgtype__)))
    assert raw == padded(to_idl(msg).serialize())
    assert raw[:4] == b"\x00\x01\x00\x00"  # CDR little endian, no options: what ROS 2 sends
    assert M.encode(M.decode(raw, msg.__msgtype__)) == raw


@settings(max_examples=60, deadline=None)
@given(names=names, position=floats, velocity=floats, ns=stamps, frame=st.text(max_size=5))
def test_joint_state_bytes_for_any_content(names: list[str], position: list[float], velocity: list[float], ns: int,
                                           frame: str) -> None:
    # Odd string lengths and empty arrays move the 8-byte alignment of the doubles around.
    msg = M.joint_state(names, position, velocity, None, ns, frame)
    assert M.encode(msg) == padded(to_idl(msg).serialize())


@settings(max_examples=40, deadline=None)
@given(names=names, values=floats, t=st.floats(0, 100))
def test_trajectory_and_array_bytes_for_any_content(names: list[str], values: list[float], t: float) -> None:
    traj = M.joint_trajectory(names, [values], [t])
    assert M.encode(traj) == padded(to_idl(traj).serialize())
    array = M.float64_array(values, [("x", len(values))])
    assert M.encode(array) == padded(to_idl(array).serialize())


def test_type_names_follow_ros2_mangling() -> None:
    for ros_type, cls in idl.IDL_TYPES.items():
        assert cls.__idl_typename__.replace(".", "::") == idl.dds_type_name(ros_type)
    assert set(M.MESSAGE_TYPES) <= set(idl.IDL_TYPES)


def test_bytes_on_the_wire_equal_rosbags_cdr(ros_env: dict[str, str]) -> None:
    from robot_rl_ros.transport import make_transport

    sender, receiver = make_transport("sender", "cyclone"), make_transport("receiver", "cyclone")
    try:
        received: dict[str, list[bytes]] = {}
        pubs = {}
        for msg in examples():
            t = msg.__msgtype__
            topic = "/wire/" + t.split("/")[-1].lower()
            receiver.subscribe(topic, t, received.setdefault(t, []).append, raw=True)
            pubs[t] = (sender.publisher(topic, t), msg)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len([v for v in received.values() if v]) < len(pubs):
            for pub, msg in pubs.values():
                pub.publish(msg)
            time.sleep(0.05)
        for t, (_, msg) in pubs.items():
            assert received[t], f"nothing received on {t}"
            assert received[t][0] == padded(bytes(M.TYPESTORE.serialize_cdr(msg, t))), t
    finally:
        sender.close()
        receiver.close()


def test_image_round_trip_keeps_pixels() -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    back = M.image_to_numpy(M.decode(M.encode(M.image(rgb)), M.IMAGE))
    np.testing.assert_array_equal(back, rgb)


def test_depth_and_camera_info_round_trip() -> None:
    depth = np.random.default_rng(2).uniform(0.2, 3.0, (6, 9)).astype(np.float32)
    depth[1, 2], depth[3, 4] = np.nan, 0.0  # no reading, either way
    back = M.depth_to_numpy(M.decode(M.encode(M.depth_image(depth, frame_id="front")), M.IMAGE))
    np.testing.assert_array_equal(back, depth)
    # 16UC1 in millimetres, as RealSense drivers publish, reads as metres.
    mm = np.array([[1000, 0], [250, 65535]], dtype="<u2")
    msg = M.Image(header=M.header(), height=2, width=2, encoding="16UC1", is_bigendian=0, step=4,
                  data=mm.view(np.uint8).reshape(-1))
    np.testing.assert_allclose(M.depth_to_numpy(msg), [[1.0, 0.0], [0.25, 65.535]], rtol=1e-6)
    with pytest.raises(ValueError, match="unsupported depth encoding 'rgb8'"):
        M.depth_to_numpy(M.image(np.zeros((2, 2, 3), np.uint8)))
    info = M.decode(M.encode(M.camera_info(48, 64, (60.0, 61.0, 31.5, 23.5), frame_id="front")), M.CAMERA_INFO)
    assert (info.height, info.width, info.header.frame_id, info.distortion_model) == (48, 64, "front", "plumb_bob")
    assert M.intrinsics_of(info) == (60.0, 61.0, 31.5, 23.5)
    np.testing.assert_array_equal(info.p.reshape(3, 4)[:, :3], info.k.reshape(3, 3))
