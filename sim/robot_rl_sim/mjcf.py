"""Loading MJCF files with errors that name the file, and describing a model's layout."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from robot_rl.envs.backend import Layout
from robot_rl_sim.paths import scene_path

_QPOS_SIZE = {mujoco.mjtJoint.mjJNT_FREE: 7, mujoco.mjtJoint.mjJNT_BALL: 4}
_QVEL_SIZE = {mujoco.mjtJoint.mjJNT_FREE: 6, mujoco.mjtJoint.mjJNT_BALL: 3}


def load_model(scene: str | Path) -> mujoco.MjModel:
    """Compile an MJCF file (relative to ``models/`` or absolute).

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        ValueError: MuJoCo rejects the file; the message names the file and carries
            MuJoCo's complaint, which gives the element and line.
    """
    path = scene_path(str(scene))
    if not path.is_file():
        raise FileNotFoundError(f"MJCF file not found: {path}")
    try:
        return mujoco.MjModel.from_xml_path(str(path))
    except ValueError as error:
        raise ValueError(f"MuJoCo could not load {path}: {error}") from None


def _names(model: mujoco.MjModel, obj: mujoco.mjtObj, count: int) -> list[str]:
    return [mujoco.mj_id2name(model, obj, i) or f"{obj.name.lower()[6:]}{i}" for i in range(count)]


def build_layout(model: mujoco.MjModel) -> Layout:
    """Names -> indices for a compiled model."""
    joint_qpos, joint_qvel = {}, {}
    for j, name in enumerate(_names(model, mujoco.mjtObj.mjOBJ_JOINT, model.njnt)):
        kind = mujoco.mjtJoint(model.jnt_type[j])
        qadr, dadr = int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])
        joint_qpos[name] = slice(qadr, qadr + _QPOS_SIZE.get(kind, 1))
        joint_qvel[name] = slice(dadr, dadr + _QVEL_SIZE.get(kind, 1))
    sensors = {
        name: slice(int(model.sensor_adr[i]), int(model.sensor_adr[i] + model.sensor_dim[i]))
        for i, name in enumerate(_names(model, mujoco.mjtObj.mjOBJ_SENSOR, model.nsensor))
    }
    bodies = {name: i for i, name in enumerate(_names(model, mujoco.mjtObj.mjOBJ_BODY, model.nbody))}
    mocap = {name: int(model.body_mocapid[i]) for name, i in bodies.items() if model.body_mocapid[i] >= 0}
    limited = model.actuator_ctrllimited.astype(bool)
    low = np.where(limited, model.actuator_ctrlrange[:, 0], -np.inf)
    high = np.where(limited, model.actuator_ctrlrange[:, 1], np.inf)
    return Layout(
        nq=model.nq,
        nv=model.nv,
        nu=model.nu,
        nmocap=model.nmocap,
        nsensordata=model.nsensordata,
        timestep=float(model.opt.timestep),
        joint_qpos=joint_qpos,
        joint_qvel=joint_qvel,
        sensors=sensors,
        bodies=bodies,
        mocap=mocap,
        actuators={name: i for i, name in enumerate(_names(model, mujoco.mjtObj.mjOBJ_ACTUATOR, model.nu))},
        ctrl_low=tuple(float(x) for x in low),
        ctrl_high=tuple(float(x) for x in high),
        cameras=tuple(_names(model, mujoco.mjtObj.mjOBJ_CAMERA, model.ncam)),
    )


def position_actuators(model: mujoco.MjModel) -> np.ndarray:
    """Indices of actuators with a position-servo shape (gain kp, bias -kp·q): their stiffness
    is what actuator-gain randomisation scales."""
    fixed_gain = model.actuator_gaintype == mujoco.mjtGain.mjGAIN_FIXED
    affine_bias = model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE
    servo = np.isclose(model.actuator_biasprm[:, 1], -model.actuator_gainprm[:, 0])
    return np.nonzero(fixed_gain & affine_bias & servo & (model.actuator_gainprm[:, 0] > 0))[0]
