"""The cyclone transport between processes on loopback: delivery, QoS presets and clear errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import pytest
from ros_helpers import wait_for

from robot_rl_ros import messages as M
from robot_rl_ros.qos import LATCHED, SENSOR_DATA
from robot_rl_ros.transport import TransportError, make_transport

pytestmark = pytest.mark.ros

PUBLISHER = textwrap.dedent("""
    import sys, time
    from robot_rl_ros import messages as M
    from robot_rl_ros.qos import LATCHED
    from robot_rl_ros.transport import make_transport
    t = make_transport("talker", "cyclone")
    latched = t.publisher("/estop", M.BOOL, LATCHED)
    latched.publish(M.boolean(True))
    states = t.publisher("/joint_states", M.JOINT_STATE)
    print("ready", flush=True)
    for i in range(400):
        states.publish(M.joint_state(["joint1"], [float(i)]))
        time.sleep(0.005)
""")


def test_messages_cross_processes_and_latched_topics_reach_late_joiners(ros_env: dict[str, str]) -> None:
    talker = subprocess.Popen([sys.executable, "-c", PUBLISHER], env=ros_env, stdout=subprocess.PIPE, text=True)
    listener = make_transport("listener", "cyclone")
    try:
        assert talker.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # subscribe after the e-stop was published: only a latched topic still delivers it
        estop, states = [], []
        listener.subscribe("/estop", M.BOOL, estop.append, LATCHED)
        listener.subscribe("/joint_states", M.JOINT_STATE, states.append)
        wait_for(lambda: estop and len(states) > 20, 10, "the latched e-stop and a stream of joint states")
        assert estop[0].data is True
        positions = [s.position[0] for s in states]
        assert positions == sorted(positions)  # reliable keep-last delivers in order
    finally:
        talker.kill()
        talker.wait()
        listener.close()


def test_best_effort_subscriber_gets_sensor_data(ros_env: dict[str, str]) -> None:
    a, b = make_transport("a", "cyclone"), make_transport("b", "cyclone")
    try:
        got: list = []
        b.subscribe("/camera/image_raw", M.IMAGE, got.append, SENSOR_DATA)
        pub = a.publisher("/camera/image_raw", M.IMAGE, SENSOR_DATA)
        import numpy as np

        frame = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)

        def send_and_check() -> bool:
            pub.publish(M.image(frame))
            return bool(got)

        wait_for(send_and_check, 10, "an image on a sensor-data topic", interval=0.05)
        assert (M.image_to_numpy(got[0]) == frame).all()
    finally:
        a.close()
        b.close()


def test_out_of_range_domain_is_a_clear_error(ros_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROS_DOMAIN_ID", "300")
    with pytest.raises(TransportError, match=r"ROS_DOMAIN_ID=300 is out of range; set it to 0\.\.232"):
        make_transport("x", "cyclone")


def test_ports_in_use_is_a_clear_error(ros_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    domain = int(ros_env["ROS_DOMAIN_ID"])
    # A fixed participant index makes cyclone use exactly these unicast ports (7400 + 250·domain + 10/11).
    first = 7400 + 250 * domain + 10
    holders = []
    for port in (first, first + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        holders.append(s)
    monkeypatch.setenv("CYCLONEDDS_URI", "<CycloneDDS><Domain Id='any'><General><Interfaces>"
                       "<NetworkInterface address='127.0.0.1'/></Interfaces><AllowMulticast>false</AllowMulticast>"
                       "</General><Discovery><ParticipantIndex>0</ParticipantIndex></Discovery></Domain></CycloneDDS>")
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE")
    try:
        with pytest.raises(TransportError, match="could not start DDS on ROS_DOMAIN_ID=.*pick another ROS_DOMAIN_ID"):
            make_transport("x", "cyclone")
    finally:
        for s in holders:
            s.close()


def test_unknown_backend_and_type_are_clear_errors(ros_env: dict[str, str]) -> None:
    with pytest.raises(TransportError, match="unknown transport backend 'zenoh'"):
        make_transport("x", "zenoh")
    t = make_transport("x", "cyclone")
    try:
        with pytest.raises(TransportError, match="no DDS type for 'std_msgs/msg/String'"):
            t.publisher("/chatter", "std_msgs/msg/String")
    finally:
        t.close()
