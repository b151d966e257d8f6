"""Transition records: every field survives the wire, including the weights version that acted,
and a record written before ``weights_version`` existed still parses (as version 0)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robot_rl_ros import messages as M
from robot_rl_ros.transition import SCHEMA, Transition, from_message, to_message

pytestmark = pytest.mark.ros


def example(**changes: object) -> Transition:
    rng = np.random.default_rng(3)
    t = Transition(episode=4, step=17, time=1_763_790_000.125, observation=rng.normal(size=32),
                   state=rng.normal(size=8), policy_action=rng.uniform(-1, 1, 8), action=rng.uniform(-1, 1, 8),
                   intervention=True, reward=1.0, done=True, success=True, hold=False, weights_version=12)
    return dataclasses.replace(t, **changes)


def assert_same(a: Transition, b: Transition) -> None:
    for name in Transition.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y and type(x) is type(y), name


def test_a_record_round_trips_through_the_wire_with_its_weights_version() -> None:
    sent = example()
    msg = to_message(sent)
    assert msg.layout.dim[0].label.endswith(",hold:1,weights_version:1")
    back = from_message(M.decode(M.encode(msg), M.FLOAT64_ARRAY))
    assert back.weights_version == 12
    assert_same(back, sent)


def test_a_record_from_before_weights_version_reads_as_version_0() -> None:
    """The label of a recording made before the field existed: the same fields, without it."""
    old = example(weights_version=0)
    parts = [(name, values) for name, values in old.fields() if name != "weights_version"]
    label = SCHEMA + ";" + ",".join(f"{name}:{len(values)}" for name, values in parts)
    data = np.concatenate([values for _, values in parts])
    assert label.endswith(",success:1,hold:1")
    raw = M.encode(M.float64_array(data, [(label, len(data))]))
    back = from_message(M.decode(raw, M.FLOAT64_ARRAY))
    assert back.weights_version == 0
    assert_same(back, old)


def test_a_record_with_a_required_field_missing_is_a_value_error() -> None:
    parts = [(name, values) for name, values in example().fields() if name != "reward"]
    label = SCHEMA + ";" + ",".join(f"{name}:{len(values)}" for name, values in parts)
    data = np.concatenate([values for _, values in parts])
    with pytest.raises(ValueError, match="malformed robot_rl.transition.v1 record: .*reward"):
        from_message(M.float64_array(data, [(label, len(data))]))
