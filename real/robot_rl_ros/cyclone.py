"""The cyclonedds backend: ROS 2 topics on the wire without ROS installed.

A topic ``/x`` of ``pkg/msg/T`` is the DDS topic ``rt/x`` of type ``pkg::msg::dds_::T_`` carrying
plain CDR, which is what rmw_cyclonedds_cpp sends, so ``ros2 topic echo`` on the same
``ROS_DOMAIN_ID`` sees these messages and ROS 2 nodes can command the fake arm. Samples are
written and taken as bytes (``ddspy_write`` / ``ddspy_take``) so serialisation goes through
rosbags (``messages.encode``) instead of cyclonedds' per-element Python path.

``ROS_LOCALHOST_ONLY=1`` or ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` keeps traffic on the
loopback interface (unicast discovery, since ``lo`` has no multicast); ``CYCLONEDDS_URI``
is honoured otherwise.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from cyclonedds._clayer import ddspy_take, ddspy_write
from cyclonedds.core import DDSException, GuardCondition, InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from robot_rl_ros.idl import IDL_TYPES
from robot_rl_ros.messages import decode, encode
from robot_rl_ros.qos import DEFAULT, Durability, QosProfile, Reliability
from robot_rl_ros.transport import TransportError, resolve_topic

log = logging.getLogger(__name__)

_ANY = SampleState.Any | ViewState.Any | InstanceState.Any
_TAKE_BATCH = 64
# Unicast discovery probes every participant index on the peer; 48 leaves room for a deployment
# plus tests and keeps the highest port below 65536 up to domain 232.
_MAX_PARTICIPANTS = 48
LOCALHOST_CONFIG = f"""<CycloneDDS><Domain Id="any">
  <General><Interfaces><NetworkInterface address="127.0.0.1"/></Interfaces>
    <AllowMulticast>false</AllowMulticast></General>
  <Discovery><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>{_MAX_PARTICIPANTS}</MaxAutoParticipantIndex>
    <Peers><Peer address="127.0.0.1"/></Peers></Discovery>
</Domain></CycloneDDS>"""


_DOMAINS: dict[int, Domain] = {}
"""Configured domains of this process: cyclonedds allows one Domain object per id."""


def localhost_only() -> bool:
    """ROS 2's switches for keeping discovery on this machine (Humble's and Iron's spellings)."""
    return (os.environ.get("ROS_LOCALHOST_ONLY", "0") == "1"
            or os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").upper() == "LOCALHOST")


def dds_qos(profile: QosProfile) -> Qos:
    reliability = (Policy.Reliability.Reliable(max_blocking_time=100_000_000)
                   if profile.reliability is Reliability.RELIABLE else Policy.Reliability.BestEffort)
    durability = (Policy.Durability.TransientLocal if profile.durability is Durability.TRANSIENT_LOCAL
                  else Policy.Durability.Volatile)
    return Qos(reliability, durability, Policy.History.KeepLast(profile.depth))


class CyclonePublisher:
    def __init__(self, writer: DataWriter, topic: str) -> None:
        self._writer = writer
        self._ref = writer._ref
        self.topic = topic

    def publish(self, msg: Any) -> None:
        self.publish_raw(encode(msg))

    def publish_raw(self, data: bytes) -> None:
        ret = ddspy_write(self._ref, data)
        if ret < 0:
            raise TransportError(f"writing to {self.topic} failed: {DDSException(ret, '')}")

    def subscription_count(self) -> int:
        return len(self._writer.get_matched_subscriptions())


class _Subscription:
    def __init__(self, reader: DataReader, ros_type: str, callback: Callable[[Any], None], raw: bool) -> None:
        self.reader = reader
        self.ros_type = ros_type
        self.callback = callback
        self.raw = raw


class CycloneTransport:
    """Implements :class:`robot_rl_ros.transport.Transport` with one DDS participant."""

    backend = "cyclone"

    def __init__(self, node_name: str, namespace: str, domain_id: int) -> None:
        self.node_name, self.namespace, self.domain_id = node_name, namespace, domain_id
        try:
            # A Domain created with a config applies it to participants created afterwards in this process.
            if localhost_only() and domain_id not in _DOMAINS:
                _DOMAINS[domain_id] = Domain(domain_id, LOCALHOST_CONFIG)
            self._participant = DomainParticipant(domain_id)
        except DDSException:
            raise TransportError(
                f"could not start DDS on ROS_DOMAIN_ID={domain_id}: cyclonedds refused to create a participant "
                "(its log line names the cause, usually ports in use); pick another ROS_DOMAIN_ID, stop the "
                "process holding the ports, or fix CYCLONEDDS_URI"
            ) from None
        self._topics: dict[str, Topic] = {}
        self._subscriptions: list[_Subscription] = []
        self._conditions: list[ReadCondition] = []  # kept alive while attached to the waitset
        self._lock = threading.Lock()
        self._waitset = WaitSet(self._participant)
        self._wake = GuardCondition(self._participant)
        self._waitset.attach(self._wake)
        self._running = True
        self._thread = threading.Thread(target=self._dispatch, name=f"{node_name}-dds", daemon=True)
        self._thread.start()

    def _topic(self, name: str, ros_type: str) -> Topic:
        dds_name = "rt" + resolve_topic(name, self.node_name, self.namespace)
        if ros_type not in IDL_TYPES:
            raise TransportError(f"no DDS type for {ros_type!r}; known types: {', '.join(IDL_TYPES)}")
        topic = self._topics.get(dds_name)
        if topic is None:
            topic = self._topics[dds_name] = Topic(self._participant, dds_name, IDL_TYPES[ros_type])
        elif topic.data_type is not IDL_TYPES[ros_type]:
            raise TransportError(f"{name} is already used with another type ({topic.typename}) in this node")
        return topic

    def publisher(self, topic: str, ros_type: str, qos: QosProfile = DEFAULT) -> CyclonePublisher:
        writer = DataWriter(self._participant, self._topic(topic, ros_type), dds_qos(qos))
        return CyclonePublisher(writer, topic)

    def subscribe(self, topic: str, ros_type: str, callback: Callable[[Any], None], qos: QosProfile = DEFAULT,
                  raw: bool = False) -> None:
        reader = DataReader(self._participant, self._topic(topic, ros_type), dds_qos(qos))
        condition = ReadCondition(reader, _ANY)
        with self._lock:
            self._subscriptions.append(_Subscription(reader, ros_type, callback, raw))
            self._waitset.attach(condition)
            self._conditions.append(condition)
        self._wake.set(True)

    def _dispatch(self) -> None:
        while self._running:
            self._waitset.wait(200_000_000)  # ns; the guard condition wakes it early on close
            self._wake.set(False)
            with self._lock:
                subscriptions = list(self._subscriptions)
            for sub in subscriptions:
                if not self._running:
                    return
                samples = ddspy_take(sub.reader._ref, _ANY, _TAKE_BATCH)
                if isinstance(samples, int):
                    continue
                for data, info in samples:
                    if not info.valid_data:
                        continue
                    try:
                        sub.callback(data if sub.raw else decode(data, sub.ros_type))
                    except Exception:  # one bad message or callback must not stop every subscription
                        log.exception("%s: callback for %s failed", self.node_name, sub.reader.topic.name)

    def close(self) -> None:
        if not self._running:
            return
        self._running = False
        self._wake.set(True)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        # Dropping the last references deletes the DDS entities, so peers see this participant leave.
        self._subscriptions, self._conditions, self._topics = [], [], {}
