"""The contact-free Panda trajectory the Isaac Lab backend is compared on, and its native
MuJoCo recording.

Isaac Lab needs Python 3.12 with its own MuJoCo (3.12); the native backend runs in the main
environment (MuJoCo 4.0). So the native side is recorded once into ``native_reach.npz`` by the
main environment::

    python tests/sim/isaaclab/parity_reference.py     # rewrites native_reach.npz

``test_native_reference.py`` (main environment) checks that the native backend still produces
the stored file, and ``test_isaaclab_parity.py`` (Isaac Lab environment) replays the same
controls on Isaac Lab and compares.

The trajectory: 4 worlds of ``panda/scene_reach.xml`` (arm and gripper, no object; the arm stays
well above the table), each from its own start near the home pose, 40 control steps of 25
substeps with a smooth sweep of every joint's target and a step of 0.4 rad on joints 1 and 4
at step 10 that drives their servos into the force limit, and the gripper closing and opening.
Recorded per control step: qpos, qvel, and the sensor values of that state (``mj_forward`` on
it), which is what the Isaac Lab backend reports (the native backend's own sensor read-out lags
by one substep, see ``docs/isaaclab.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCENE = "panda/scene_reach.xml"
NUM_ENVS = 4
STEPS = 40
SUBSTEPS = 25
REFERENCE = Path(__file__).with_name("native_reach.npz")
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04])


def initial_state(nq: int, nv: int) -> tuple[np.ndarray, np.ndarray]:
    """qpos float32[4, nq], qvel float32[4, nv]: the arm near home, fingers half open, at rest."""
    offsets = np.array([[0.10, -0.05, 0.08, 0.05, -0.10, 0.05, 0.10],
                        [-0.10, 0.05, -0.08, -0.05, 0.10, -0.05, -0.10],
                        [0.20, 0.10, 0.0, 0.10, 0.0, -0.10, 0.20],
                        [-0.20, -0.10, 0.10, -0.10, 0.20, 0.10, 0.0]])
    qpos = np.zeros((NUM_ENVS, nq), dtype=np.float32)
    qpos[:, :7] = HOME[:7] + offsets
    qpos[:, 7:9] = 0.02
    return qpos, np.zeros((NUM_ENVS, nv), dtype=np.float32)


def controls() -> np.ndarray:
    """float32[STEPS, 4, 8] actuator controls (within every control range)."""
    k = np.arange(STEPS, dtype=np.float64)[:, None, None]
    world = np.arange(NUM_ENVS, dtype=np.float64)[None, :, None]
    amplitude = np.array([0.3, 0.2, 0.3, 0.25, 0.4, 0.25, 0.4, 0.0])
    frequency = np.array([1.0, 1.3, 0.7, 1.1, 1.7, 0.9, 1.5, 0.0])
    ctrl = HOME + amplitude * np.sin(0.15 * frequency * k + 0.9 * world)
    ctrl[10:, :, 0] += 0.4  # saturates joint 1's servo (87 N m) for several steps
    ctrl[10:, :, 3] -= 0.4  # and joint 4's
    ctrl[..., 7] = np.where((k[..., 0] // 10) % 2 == 0, 0.0, 0.04)  # gripper closes, opens
    return ctrl.astype(np.float32)


def record_native() -> dict[str, np.ndarray]:
    """Run the trajectory on the native MuJoCo backend (main environment)."""
    import mujoco
    import torch

    from robot_rl_sim.mujoco_native import NativeBackend

    sim = NativeBackend(SCENE, NUM_ENVS)
    model, data = sim.model, mujoco.MjData(sim.model)
    qpos0, qvel0 = initial_state(model.nq, model.nv)
    sim.set_state(torch.arange(NUM_ENVS), torch.from_numpy(qpos0), torch.from_numpy(qvel0))
    qpos, qvel, sensors = [], [], []
    for ctrl in controls():
        sim.step(torch.from_numpy(ctrl), SUBSTEPS)
        qpos.append(sim.qpos.numpy().copy())
        qvel.append(sim.qvel.numpy().copy())
        state_sensors = []
        for world in range(NUM_ENVS):
            data.qpos[:], data.qvel[:] = sim.qpos[world].numpy(), sim.qvel[world].numpy()
            mujoco.mj_forward(model, data)
            state_sensors.append(data.sensordata.copy())
        sensors.append(np.array(state_sensors, dtype=np.float32))
    sim.close()
    return {"qpos0": qpos0, "qvel0": qvel0, "ctrl": controls(), "qpos": np.array(qpos), "qvel": np.array(qvel),
            "sensordata": np.array(sensors), "mujoco_version": np.array(mujoco.__version__)}


if __name__ == "__main__":
    np.savez_compressed(REFERENCE, **record_native())
    print(f"wrote {REFERENCE}")
