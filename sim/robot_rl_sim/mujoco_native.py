"""Native MuJoCo backend: N worlds stepped in C threads by ``mujoco.rollout``.

The state of all worlds is one float64[N, nstate] array (``mjSTATE_FULLPHYSICS``); each
control step is one ``Rollout.rollout`` call that advances every world through all physics
substeps on all cores. Controls, applied wrenches and mocap positions travel in the rollout's
control vector, so none of them needs a Python loop over worlds.
"""

from __future__ import annotations

import copy
import os

import mujoco
import mujoco.rollout
import numpy as np
import torch

from robot_rl.envs.backend import RGBD, Layout
from robot_rl_sim.mjcf import build_layout, load_model, position_actuators
from robot_rl_sim.paths import scene_path
from robot_rl_sim.rendering import RendererPool

_STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS
_CONTROL_PARTS = (mujoco.mjtState.mjSTATE_CTRL, mujoco.mjtState.mjSTATE_XFRC_APPLIED,
                  mujoco.mjtState.mjSTATE_MOCAP_POS)


def _parts(model: mujoco.MjModel, spec: int, parts) -> dict[int, slice]:
    """Slices of each component inside a state vector of ``spec`` (components are stored in bit order)."""
    slices, start = {}, 0
    for bit in sorted(int(p) for p in parts):
        size = mujoco.mj_stateSize(model, bit)
        slices[bit] = slice(start, start + size)
        start += size
    assert start == mujoco.mj_stateSize(model, spec)
    return slices


class NativeBackend:
    """Implements :class:`robot_rl.envs.backend.Backend` with ``mujoco.rollout`` on the CPU."""

    def __init__(self, scene: str, num_envs: int, device: str | None = None, nthread: int | None = None) -> None:
        if device not in (None, "cpu"):
            raise ValueError(f"the native MuJoCo backend runs on the CPU, not {device!r}; "
                             "use backend='warp' for a GPU")
        self.model = load_model(scene)
        self._scene = scene
        self._relaxed: tuple[str, tuple[str, ...]] | None = None
        self.layout: Layout = build_layout(self.model)
        self.num_envs = n = num_envs
        self.device = torch.device("cpu")
        model = self.model

        self._state_parts = _parts(model, _STATE, [b for b in mujoco.mjtState.__members__.values()
                                                   if int(b) & int(_STATE) and bin(int(b)).count("1") == 1])
        self._qpos = self._state_parts[int(mujoco.mjtState.mjSTATE_QPOS)]
        self._qvel = self._state_parts[int(mujoco.mjtState.mjSTATE_QVEL)]
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        row = np.empty(mujoco.mj_stateSize(model, _STATE))
        mujoco.mj_getState(model, data, row, _STATE)
        self._state = np.tile(row, (n, 1))
        """float64[N, nstate]: the physics state of every world."""

        spec = int(sum(int(p) for p in _CONTROL_PARTS))
        parts = _parts(model, spec, _CONTROL_PARTS)
        self._ctrl_part = parts[int(mujoco.mjtState.mjSTATE_CTRL)]
        self._xfrc_part = parts[int(mujoco.mjtState.mjSTATE_XFRC_APPLIED)]
        self._mocap_part = parts[int(mujoco.mjtState.mjSTATE_MOCAP_POS)]
        self._control = np.zeros((n, 1, mujoco.mj_stateSize(model, spec)))
        """float64[N, 1, ncontrol]: ctrl, xfrc_applied and mocap_pos of every world."""
        self._control[:, 0, self._mocap_part] = data.mocap_pos.reshape(-1)
        # The rollout copies every control column into every substep, so it is only sent the
        # parts in use: wrench columns (6 per body) only while some wrench is non-zero.
        self._specs = {}
        for wrenched in (False, True):
            used = [mujoco.mjtState.mjSTATE_CTRL]
            used += [mujoco.mjtState.mjSTATE_XFRC_APPLIED] if wrenched else []
            used += [mujoco.mjtState.mjSTATE_MOCAP_POS] if model.nmocap else []
            columns = np.concatenate([np.arange(parts[int(p)].start, parts[int(p)].stop) for p in used])
            self._specs[wrenched] = (int(sum(int(p) for p in used)), columns)
        self._wrenched = False
        self._sensordata = np.tile(data.sensordata, (n, 1))

        nthread = nthread if nthread is not None else (os.cpu_count() or 1)
        # A pool only pays off with several worlds per call; one world runs on the caller's thread.
        self._nthread = nthread if n > 1 else 0
        self._pool = mujoco.rollout.Rollout(nthread=self._nthread)
        self._datas = [mujoco.MjData(model) for _ in range(max(1, self._nthread))]
        self._models = [model] * n
        self._outputs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._renderers = RendererPool(model)
        self._refresh()

    # -- stepping ------------------------------------------------------------------------------

    def step(self, ctrl: torch.Tensor, substeps: int) -> None:
        self._control[:, 0, self._ctrl_part] = ctrl.detach().cpu().numpy()
        state, sensordata = self._rollout(self._state, self._control, substeps)
        self._state[:] = state
        self._sensordata[:] = sensordata
        self._refresh()

    def _rollout(self, initial: np.ndarray, control: np.ndarray, nstep: int,
                 env_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Advance worlds (all, or ``env_ids``) ``nstep`` steps; return their final state and
        the sensor values computed during the last step."""
        n = initial.shape[0]
        spec, columns = self._specs[self._wrenched]
        key = (nstep, spec)
        buffers = self._outputs.get(key) if env_ids is None else None
        if buffers is None:
            buffers = (np.empty((n, nstep, len(columns))),
                       np.empty((n, nstep, self._state.shape[1])),
                       np.empty((n, nstep, self.model.nsensordata)))
            if env_ids is None:
                self._outputs[key] = buffers
        controls, states, sensors = buffers
        controls[:] = control[:, :, columns]  # the same control for every substep
        models = self._models if env_ids is None else [self._models[i] for i in env_ids]
        self._pool.rollout(models, self._datas, initial, controls, control_spec=spec,
                           skip_checks=True, nstep=nstep, state=states, sensordata=sensors)
        return states[:, -1], sensors[:, -1]

    def set_state(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor,
                  mocap_pos: torch.Tensor | None = None) -> None:
        ids = env_ids.cpu().numpy()
        rows = np.zeros((len(ids), self._state.shape[1]))
        rows[:, self._qpos] = qpos.cpu().numpy()
        rows[:, self._qvel] = qvel.cpu().numpy()
        if mocap_pos is not None:
            self._control[ids, 0, self._mocap_part] = mocap_pos.reshape(len(ids), -1).cpu().numpy()
        self._state[ids] = rows
        # Sensors of a step are computed before it integrates, so one step from the new state
        # yields the sensor values of exactly that state (the stepped state is discarded).
        control = self._control[ids].copy()
        control[:, :, self._ctrl_part] = 0.0
        _, sensors = self._rollout(rows, control, 1, ids)
        self._sensordata[ids] = sensors
        self._refresh()

    def apply_wrench(self, body: str, wrench: torch.Tensor) -> None:
        b = self.layout.body(body)
        start = self._xfrc_part.start + 6 * b
        self._control[:, 0, start:start + 6] = wrench.detach().cpu().numpy()
        self._wrenched = bool(self._control[:, 0, self._xfrc_part].any())

    # -- randomisation -------------------------------------------------------------------------

    def set_dynamics(self, env_ids: torch.Tensor, mass_scale: torch.Tensor, friction_scale: torch.Tensor,
                     gain_scale: torch.Tensor, bodies: tuple[str, ...] = ()) -> None:
        base = self.model
        if self._models[0] is base and len(set(map(id, self._models))) == 1:
            self._models = [copy.copy(base) for _ in range(self.num_envs)]
        body_ids = [self.layout.body(b) for b in bodies] if bodies else slice(None)
        servos = position_actuators(base)
        for i, m, f, g in zip(env_ids.tolist(), mass_scale.tolist(), friction_scale.tolist(), gain_scale.tolist()):
            world = self._models[i]
            world.body_mass[body_ids] = base.body_mass[body_ids] * m
            world.body_inertia[body_ids] = base.body_inertia[body_ids] * m
            world.geom_friction[:, 0] = base.geom_friction[:, 0] * f
            world.actuator_gainprm[servos, 0] = base.actuator_gainprm[servos, 0] * g
            world.actuator_biasprm[servos, 1] = base.actuator_biasprm[servos, 1] * g

    # -- relaxed contacts ------------------------------------------------------------------------

    def relax_contacts(self, geom: str, bodies: tuple[str, ...], depth: torch.Tensor) -> None:
        """Let the geoms of ``bodies`` sink up to ``depth`` float32[N] metres (per world) into
        ``geom`` before their contacts push back (0: ordinary contacts).

        The first call recompiles the model with these contacts as explicit pairs, whose
        parameters are those MuJoCo would mix for the dynamic contacts; every call sets each
        world's pair margin to −depth, so a contact only acts once the penetration exceeds
        depth. Call it before dynamics randomisation, which the first call resets.
        """
        if self._relaxed is None:
            self._compile_relaxed(geom, tuple(bodies))
        elif self._relaxed != (geom, tuple(bodies)):
            raise ValueError(f"contacts of {self._relaxed[1]} with {self._relaxed[0]!r} are already relaxed; "
                             "one set of relaxed contacts per backend")
        depths = depth.detach().cpu().numpy().astype(np.float64)
        if depths.shape != (self.num_envs,) or (depths < 0).any():
            raise ValueError(f"depth must be float[{self.num_envs}] >= 0, got shape {depths.shape}")
        if self._models[0] is self.model and len(set(map(id, self._models))) == 1:
            self._models = [copy.copy(self.model) for _ in range(self.num_envs)]
        for world, d in zip(self._models, depths):
            world.pair_margin[:] = -d

    def _compile_relaxed(self, geom: str, bodies: tuple[str, ...]) -> None:
        base = self.model
        if mujoco.mj_name2id(base, mujoco.mjtObj.mjOBJ_GEOM, geom) < 0:
            raise ValueError(f"no geom {geom!r} in {self._scene}")
        ids = [self.layout.body(b) for b in bodies]
        spec = mujoco.MjSpec.from_file(str(scene_path(self._scene)))
        owner = base.body(int(base.geom(geom).bodyid[0])).name
        for b in bodies:
            spec.add_exclude(bodyname1=owner, bodyname2=b)
        g = base.geom(geom).id
        for other in range(base.ngeom):
            if int(base.geom_bodyid[other]) not in ids:
                continue
            c1, a1, c2, a2 = (int(x) for x in (base.geom_contype[g], base.geom_conaffinity[g],
                                                base.geom_contype[other], base.geom_conaffinity[other]))
            if not (c1 & a2 or c2 & a1):
                continue  # never touched in the first place
            spec.add_pair(geomname1=geom, geomname2=mujoco.mj_id2name(base, mujoco.mjtObj.mjOBJ_GEOM, other),
                          condim=int(max(base.geom_condim[g], base.geom_condim[other])))
        model = spec.compile()
        if mujoco.mj_stateSize(model, _STATE) != self._state.shape[1]:
            raise RuntimeError("relaxing contacts changed the physics state layout")
        self.model, self._relaxed = model, (geom, tuple(bodies))
        self._models = [model] * self.num_envs
        self._datas = [mujoco.MjData(model) for _ in range(max(1, self._nthread))]
        self._outputs.clear()
        self._renderers.close()
        self._renderers = RendererPool(model)

    # -- reading -------------------------------------------------------------------------------

    def _refresh(self) -> None:
        state = torch.from_numpy(self._state)
        self.qpos = state[:, self._qpos].float()
        self.qvel = state[:, self._qvel].float()
        self.sensordata = torch.from_numpy(self._sensordata).float()
        self.mocap_pos = torch.from_numpy(self._control[:, 0, self._mocap_part]).float().view(self.num_envs, -1, 3)

    def sensor(self, name: str) -> torch.Tensor:
        """float32[N, dim] of the named sensor."""
        return self.sensordata[:, self.layout.sensor(name)]

    def render(self, camera: str, height: int, width: int, env_ids: torch.Tensor | None = None,
               antialias: bool = True) -> torch.Tensor:
        ids = slice(None) if env_ids is None else env_ids.cpu().numpy()
        mocap = self._control[ids, 0, self._mocap_part].reshape(-1, self.model.nmocap, 3) if self.model.nmocap else None
        images = self._renderers.render(camera, height, width, self._state[ids][:, self._qpos], mocap, antialias)
        return torch.from_numpy(images)

    def render_rgbd(self, camera: str, height: int, width: int, env_ids: torch.Tensor | None = None) -> RGBD:
        """RGB-D images of ``camera`` in worlds ``env_ids`` (all when None); see
        :class:`~robot_rl.envs.backend.DepthBackend`."""
        ids = slice(None) if env_ids is None else env_ids.cpu().numpy()
        mocap = self._control[ids, 0, self._mocap_part].reshape(-1, self.model.nmocap, 3) if self.model.nmocap else None
        rgb, depth, poses, intrinsics = self._renderers.render_rgbd(camera, height, width,
                                                                    self._state[ids][:, self._qpos], mocap)
        return RGBD(torch.from_numpy(rgb), torch.from_numpy(depth), torch.from_numpy(poses), intrinsics)

    def close(self) -> None:
        self._renderers.close()
        self._pool.close()
