"""One publish/subscribe interface over two backends.

    transport = make_transport("fake_arm")                 # rclpy if it imports, else cyclone
    pub = transport.publisher("/joint_states", JOINT_STATE, SENSOR_DATA)
    pub.publish(joint_state(names, q))
    transport.subscribe("/arm/commands", FLOAT64_ARRAY, on_command)
    ...
    transport.close()

Callbacks run on one background thread per transport, in arrival order (like a
single-threaded rclpy executor); keep them short and hand data to the node's loop.
``ROS_DOMAIN_ID`` selects the domain, as in ROS 2.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any, Protocol

from robot_rl_ros.qos import DEFAULT, QosProfile

BACKENDS = ("auto", "cyclone", "rclpy")
MAX_DOMAIN_ID = 232  # the highest id whose DDS ports stay below 65536 with the default port mapping


class TransportError(RuntimeError):
    """The transport could not start or a topic could not be created; the message says why and what to do."""


class Publisher(Protocol):
    def publish(self, msg: Any) -> None:
        """Send a message (a ``robot_rl_ros.messages`` dataclass)."""

    def publish_raw(self, data: bytes) -> None:
        """Send already-serialised CDR bytes (``messages.encode``)."""

    def subscription_count(self) -> int:
        """Subscriptions currently matched to this publisher."""


class Transport(Protocol):
    node_name: str
    backend: str

    def publisher(self, topic: str, ros_type: str, qos: QosProfile = DEFAULT) -> Publisher:
        """A publisher on ``topic`` (a ROS name such as ``/joint_states``) of ``ros_type`` (``pkg/msg/Type``)."""

    def subscribe(self, topic: str, ros_type: str, callback: Callable[[Any], None], qos: QosProfile = DEFAULT,
                  raw: bool = False) -> None:
        """Call ``callback(msg)`` for each message; with ``raw=True``, ``callback(cdr_bytes)`` instead
        (the recorder stores bytes without decoding them)."""

    def close(self) -> None:
        """Stop the callback thread and leave the domain."""


def domain_id_from_env() -> int:
    """``ROS_DOMAIN_ID`` (default 0), checked."""
    text = os.environ.get("ROS_DOMAIN_ID", "0").strip() or "0"
    try:
        value = int(text)
    except ValueError:
        raise TransportError(f"ROS_DOMAIN_ID={text!r} is not an integer; set it to 0..{MAX_DOMAIN_ID}") from None
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise TransportError(f"ROS_DOMAIN_ID={value} is out of range; set it to 0..{MAX_DOMAIN_ID}")
    return value


def resolve_topic(topic: str, node_name: str, namespace: str = "/") -> str:
    """ROS name -> fully qualified name: ``~/x`` is private to the node, relative names join the namespace."""
    if topic.startswith("~"):
        topic = f"{namespace.rstrip('/')}/{node_name}{topic[1:]}"
    elif not topic.startswith("/"):
        topic = f"{namespace.rstrip('/')}/{topic}"
    if "//" in topic or topic.endswith("/") or not topic[1:]:
        raise TransportError(f"invalid topic name {topic!r}; use names like /joint_states")
    return topic


def rclpy_available() -> bool:
    return importlib.util.find_spec("rclpy") is not None


def make_transport(node_name: str, backend: str = "auto", namespace: str = "/",
                   domain_id: int | None = None) -> Transport:
    """Start a transport for one node. ``backend``: ``auto`` (rclpy where it imports, else cyclone),
    ``cyclone`` or ``rclpy``."""
    if backend not in BACKENDS:
        raise TransportError(f"unknown transport backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "rclpy" if rclpy_available() else "cyclone"
    domain = domain_id_from_env() if domain_id is None else domain_id
    if backend == "rclpy":
        from robot_rl_ros.rclpy_backend import RclpyTransport

        return RclpyTransport(node_name, namespace, domain)
    from robot_rl_ros.cyclone import CycloneTransport

    return CycloneTransport(node_name, namespace, domain)
