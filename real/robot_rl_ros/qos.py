"""QoS profiles matching rclpy's presets, independent of any backend."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Reliability(Enum):
    RELIABLE = "reliable"
    BEST_EFFORT = "best_effort"


class Durability(Enum):
    VOLATILE = "volatile"
    TRANSIENT_LOCAL = "transient_local"


@dataclass(frozen=True)
class QosProfile:
    """What a publisher promises or a subscription asks for. Histories are always keep-last, as
    rclpy's ``create_publisher(type, topic, depth)`` makes them."""

    reliability: Reliability = Reliability.RELIABLE
    """RELIABLE retransmits lost samples; BEST_EFFORT drops them (lower latency for streams)."""
    durability: Durability = Durability.VOLATILE
    """TRANSIENT_LOCAL keeps the last ``depth`` samples for subscribers that join later ("latched")."""
    depth: int = 10
    """Samples kept per topic (keep-last history)."""


DEFAULT = QosProfile()
"""rclpy ``qos_profile_system_default`` / ``create_publisher(..., 10)``: reliable, volatile, keep last 10."""
SENSOR_DATA = QosProfile(Reliability.BEST_EFFORT, Durability.VOLATILE, 5)
"""rclpy ``qos_profile_sensor_data``: best effort, volatile, keep last 5."""
LATCHED = QosProfile(Reliability.RELIABLE, Durability.TRANSIENT_LOCAL, 1)
"""Reliable, transient local, keep last 1: late joiners still see the last e-stop or goal."""

PRESETS: dict[str, QosProfile] = {"default": DEFAULT, "sensor_data": SENSOR_DATA, "latched": LATCHED}


def preset(name: str) -> QosProfile:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown QoS preset {name!r}; choose one of {', '.join(PRESETS)}") from None
