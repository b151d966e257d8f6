"""The Isaac Lab backend follows native MuJoCo on a contact-free Panda trajectory.

The native side is ``native_reach.npz``, recorded by the native backend in the main
environment (see ``parity_reference.py``; ``test_native_reference.py`` keeps it current).

Tolerances: Newton runs MuJoCo Warp in float32, native MuJoCo in float64. Measured worst cases
over the 40 control steps (1000 substeps, servos of joints 1 and 4 saturated for several steps,
gripper closing and opening): arm joints 7.2e-7 rad and 5e-5 rad/s, sensors 6.6e-7; the
fingers, while pressed against their lower limit and coupled by the MJCF's joint equality
(constraint rows solved in float32), 9.3e-5 m and 6.2e-3 m/s. The limits are about five
times those and far below what a modelling slip produces: after a 0.5 rad jump of joint 1's
target, the joint is off by 0.06 rad one control step later without the MJCF force range, and
by 0.17 rad with Isaac Lab's default split servo (damping outside the force limit); without the
compiled gripper gains the fingers stop half way (0.02 m).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("isaaclab")

from parity_reference import NUM_ENVS, REFERENCE, SCENE, SUBSTEPS  # noqa: E402

from robot_rl_sim.isaaclab.backend import IsaacLabBackend  # noqa: E402

ARM = slice(0, 7)
FINGERS = slice(7, 9)
TOLERANCES = {  # (state, columns): largest allowed |Isaac Lab - native|
    ("qpos", ARM): 5e-6, ("qvel", ARM): 3e-4, ("qpos", FINGERS): 5e-4, ("qvel", FINGERS): 3e-2,
    ("sensordata", slice(None)): 5e-6,
}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    sim = IsaacLabBackend(SCENE, NUM_ENVS, "cpu", cache_dir=str(tmp_path_factory.mktemp("usd")))
    yield sim
    sim.close()


def test_layout_matches_the_mjcf(backend: IsaacLabBackend, reference) -> None:
    assert backend.qpos.shape == (NUM_ENVS, reference["qpos"].shape[2])
    assert backend.qvel.shape == (NUM_ENVS, reference["qvel"].shape[2])
    assert backend.sensordata.shape == (NUM_ENVS, reference["sensordata"].shape[2])


def test_contact_free_trajectory_matches_native(backend: IsaacLabBackend, reference) -> None:
    ids = torch.arange(NUM_ENVS)
    backend.set_state(ids, torch.from_numpy(reference["qpos0"]), torch.from_numpy(reference["qvel0"]))
    worst = dict.fromkeys(TOLERANCES, 0.0)
    for k, ctrl in enumerate(reference["ctrl"]):
        backend.step(torch.from_numpy(ctrl), SUBSTEPS)
        for name, columns in worst:
            diff = np.abs(getattr(backend, name).numpy()[:, columns] - reference[name][k][:, columns]).max()
            worst[name, columns] = max(worst[name, columns], float(diff))
    print("worst differences to native:", worst)
    for key, tolerance in TOLERANCES.items():
        assert worst[key] < tolerance, (key, worst[key])
    # The trajectory does move: the saturating step carries joint 1 by more than 0.3 rad.
    assert np.ptp(reference["qpos"][:, 0, 0]) > 0.3
