"""The rclpy backend, used where ROS 2 is installed (``make_transport(backend="auto")``).

Messages cross as CDR bytes here too: rclpy publishes ``bytes`` as serialised messages and
``raw=True`` subscriptions hand over bytes, so both backends share ``messages.encode``/``decode``
and nodes see the same message objects. Not exercised in CI (rclpy cannot be installed there).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from robot_rl_ros.messages import decode
from robot_rl_ros.qos import DEFAULT, Durability, QosProfile, Reliability
from robot_rl_ros.transport import TransportError


class RclpyPublisher:
    def __init__(self, publisher: Any) -> None:
        self._publisher = publisher

    def publish(self, msg: Any) -> None:
        from robot_rl_ros.messages import encode

        self._publisher.publish(encode(msg))

    def publish_raw(self, data: bytes) -> None:
        self._publisher.publish(data)

    def subscription_count(self) -> int:
        return self._publisher.get_subscription_count()


class RclpyTransport:
    """Implements :class:`robot_rl_ros.transport.Transport` with an rclpy node spun on a thread."""

    backend = "rclpy"

    def __init__(self, node_name: str, namespace: str, domain_id: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        self.node_name = node_name
        self._rclpy = rclpy
        self._context = rclpy.Context()
        try:
            # The node's own SIGINT/SIGTERM handling (node.Shutdown) stops it cleanly; rclpy's would
            # shut the context down under the control loop instead.
            rclpy.init(context=self._context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
            self._node = rclpy.create_node(node_name, namespace=namespace, context=self._context)
        except Exception as error:  # rclpy raises RCLError subclasses without a common public base
            raise TransportError(f"could not start rclpy on ROS_DOMAIN_ID={domain_id}: {error}") from None
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._executor.spin, name=f"{node_name}-rclpy", daemon=True)
        self._thread.start()

    def _qos(self, profile: QosProfile) -> Any:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=profile.depth,
            reliability=(ReliabilityPolicy.RELIABLE if profile.reliability is Reliability.RELIABLE
                         else ReliabilityPolicy.BEST_EFFORT),
            durability=(DurabilityPolicy.TRANSIENT_LOCAL if profile.durability is Durability.TRANSIENT_LOCAL
                        else DurabilityPolicy.VOLATILE))

    @staticmethod
    def _message_class(ros_type: str) -> Any:
        from rosidl_runtime_py.utilities import get_message

        return get_message(ros_type)

    def publisher(self, topic: str, ros_type: str, qos: QosProfile = DEFAULT) -> RclpyPublisher:
        return RclpyPublisher(self._node.create_publisher(self._message_class(ros_type), topic, self._qos(qos)))

    def subscribe(self, topic: str, ros_type: str, callback: Callable[[Any], None], qos: QosProfile = DEFAULT,
                  raw: bool = False) -> None:
        def deliver(data: bytes) -> None:
            callback(data if raw else decode(data, ros_type))

        self._node.create_subscription(self._message_class(ros_type), topic, deliver, self._qos(qos), raw=True)

    def close(self) -> None:
        self._executor.shutdown()
        self._node.destroy_node()
        self._rclpy.shutdown(context=self._context)
        self._thread.join(timeout=2.0)
