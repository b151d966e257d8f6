"""``native_reach.npz`` is what the native MuJoCo backend produces today (main environment).

The Isaac Lab parity test compares against this file from another Python; this test keeps it
from going stale when the native backend or the Panda model changes. Regenerate with
``python tests/sim/isaaclab/parity_reference.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")
if not mujoco.__version__.startswith("4."):
    pytest.skip("the native reference is recorded with the main environment's MuJoCo 4", allow_module_level=True)

from parity_reference import REFERENCE, record_native  # noqa: E402


def test_reference_file_matches_the_native_backend() -> None:
    with np.load(REFERENCE) as data:
        stored = {key: data[key] for key in data.files}
    fresh = record_native()
    assert set(fresh) == set(stored)
    for key in ("qpos0", "qvel0", "ctrl"):
        np.testing.assert_array_equal(fresh[key], stored[key], err_msg=key)
    for key in ("qpos", "qvel", "sensordata"):
        np.testing.assert_allclose(fresh[key], stored[key], atol=1e-6, rtol=0, err_msg=key)
