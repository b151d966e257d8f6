"""MuJoCo Warp backend: N worlds of one model stepped by MuJoCo Warp kernels, on a GPU or on
Warp's CPU device.

It follows :mod:`robot_rl_sim.mujoco_native` step for step, so a task sees the same numbers
from both (see ``tests/sim/test_warp_backend.py``):

- One ``mjw.Data`` with ``nworld = N`` holds every world. Controls, applied wrenches, mocap
  positions and the physics state are written straight into its arrays through zero-copy torch
  views; nothing travels through the host.
- ``step`` zeroes the solver warmstart and runs ``mjw.step`` ``substeps`` times, as each
  ``mujoco.rollout`` call of the native backend starts from a zero warmstart. The substeps
  are captured once per substep count as a Warp graph (CUDA graph, or Warp's recorded CPU
  graph) and replayed.
- ``mjw.step``, like ``mj_step``, evaluates sensors before integrating, so after a control step
  ``sensordata`` describes the state before the last substep, exactly as on native.
- ``set_state`` zeroes time, activations, history and plastic state of the reset worlds (native
  zeroes every part of its state row except qpos/qvel), runs ``mjw.forward`` on all worlds with
  zero control in the reset ones, and puts back the sensor values of the other worlds.
  ``mjw.forward`` writes no state (qpos, qvel, warmstart, time), only derived quantities that
  the next step recomputes anyway.
- ``set_dynamics`` gives the scaled model fields one row per world (MuJoCo Warp indexes those
  fields with ``worldid % shape[0]``) instead of copying the ``MjModel`` per world.
- ``qpos``, ``qvel``, ``sensordata`` and ``mocap_pos`` are fresh copies after every update, like
  native's, so callers may keep or modify them without touching the simulation.
- ``render`` draws with native's EGL renderer (:mod:`robot_rl_sim.rendering`): qpos and mocap
  positions go to the host, worlds are drawn one after another, images come back to the
  device. MuJoCo Warp's batched ray tracer (:mod:`robot_rl_sim.warp_rendering`) was measured
  against it for the Panda front camera (``benchmarks/render_backends.py``, 2-core CPU shared
  with other work, load 6-7, Warp on its one-thread CPU device, N = 1/64/256): Warp is faster
  at 64x64 (1.3-2.8x) but slower at 128x128 (0.18-0.52x) and at the env's default, 84x84
  anti-aliased (0.73x at N = 64), because its cost grows with the pixel count (and 4x with
  anti-aliasing, 2x2 rays per pixel) while EGL's is mostly per frame. Its images also differ
  from EGL's (~6 levels of 255 on average, opaque targets; ``tests/sim/test_render_parity.py``),
  and one renderer for both backends keeps a policy or reward model trained on one backend's
  images valid on the other. Not measured on a GPU: the benchmark uses CUDA by itself there;
  if Warp wins, ``render`` can hand its qpos tensors to one
  :class:`~robot_rl_sim.warp_rendering.WarpRenderer` per image size without leaving the device.

What differs:

- Physics, including the constraint solver, runs in float32 (native: float64). Over 2000
  substeps of the Panda arm sweeping its joints, qpos stays within 1e-6 and qvel within 3e-5
  of native. Discrete events that round-off can tip either way -- a contact or joint limit
  engaging a substep earlier, a servo's force reaching its forcerange (which drops it from
  the implicit damping) -- leave offsets of ~1e-4 rad, and chaotic contact (a tumbling cube)
  drifts further.
- Contacts and constraint rows live in buffers of fixed size, chosen per model by
  :func:`buffer_sizes`. When a step needs more, MuJoCo Warp prints an overflow warning and
  drops the excess, where native would have grown its arena; pass larger ``nconmax``/``njmax``.
- The first step of each new model compiles kernels (about 25 s on a CPU; cached in
  ``~/.cache/warp`` afterwards), and each new substep count captures a graph (~0.1-0.3 s).
"""

from __future__ import annotations

import mujoco
import mujoco_warp as mjw
import numpy as np
import torch
import warp as wp

from robot_rl.envs.backend import RGBD, Layout
from robot_rl_sim.mjcf import build_layout, load_model, position_actuators
from robot_rl_sim.rendering import RendererPool
from robot_rl_sim.warp_rendering import on_device  # also quietens Warp's compile messages

_MIN_NCONMAX = 48  # MuJoCo Warp's defaults for models without height fields
_MIN_NJMAX = 64


def buffer_sizes(model: mujoco.MjModel) -> tuple[int, int]:
    """Per-world capacities ``(nconmax, njmax)`` for contacts and constraint rows.

    MuJoCo Warp's own defaults (48, 64) ignore the model. Here every collidable geom on a moving
    body may carry four contacts (a box resting on a plane) -- broadphase candidate pairs count
    against the same buffer -- and half of those contacts may be active at once with the widest
    friction cone of the model, on top of every joint/tendon limit, equality and friction-loss
    row. That gives (80, 175) for the Panda scenes with a cube and (100, 224) for the
    quadruped, which used at most 18 and 36 rows in trial runs. The headroom costs about 15%
    of the step time on the CPU and only memory on a GPU.
    """
    collides = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    moving = model.body_weldid[model.geom_bodyid] != 0
    nconmax = max(_MIN_NCONMAX, 4 * int(np.count_nonzero(collides & moving)))
    condims = [int(model.geom_condim[collides].max()) if collides.any() else 1]
    if model.npair:
        condims.append(int(model.pair_dim.max()))
    condim = max(condims)
    elliptic = model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
    rows_per_contact = condim if elliptic or condim == 1 else 2 * (condim - 1)
    other_rows = (
        int(np.count_nonzero(model.jnt_limited))
        + int(np.count_nonzero(model.tendon_limited))
        + int(np.count_nonzero(model.dof_frictionloss > 0))
        + int(np.count_nonzero(model.tendon_frictionloss > 0))
        + 6 * model.neq
    )
    njmax = max(_MIN_NJMAX, nconmax // 2 * rows_per_contact + other_rows)
    return nconmax, njmax


def _view(array: wp.array) -> torch.Tensor:
    """Zero-copy torch tensor of a Warp array (vector dtypes become a trailing dimension)."""
    return wp.to_torch(array, requires_grad=False)


class WarpBackend:
    """Implements :class:`robot_rl.envs.backend.Backend` with MuJoCo Warp."""

    def __init__(
        self,
        scene: str,
        num_envs: int,
        device: str | None = None,
        nconmax: int | None = None,
        njmax: int | None = None,
    ) -> None:
        """``nconmax``/``njmax`` override the per-world buffer sizes of :func:`buffer_sizes`."""
        self.device = _torch_device(device)
        self._wp_device = wp.get_device(str(self.device))
        self.model = model = load_model(scene)
        self.layout: Layout = build_layout(model)
        self.num_envs = n = num_envs

        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)  # native starts from qpos0 with forward-computed sensors
        default_nconmax, default_njmax = buffer_sizes(model)
        with wp.ScopedDevice(self._wp_device):
            self._m = mjw.put_model(model)
            self._d = mjw.put_data(model, data, nworld=n, nconmax=nconmax or default_nconmax,
                                   njmax=njmax or default_njmax)
        d = self._d
        self._qpos, self._qvel = _view(d.qpos), _view(d.qvel)
        self._act, self._history, self._plastic = _view(d.act), _view(d.history), _view(d.plastic)
        self._time, self._warmstart = _view(d.time), _view(d.qacc_warmstart)
        self._ctrl, self._xfrc = _view(d.ctrl), _view(d.xfrc_applied)
        self._mocap_pos, self._sensordata = _view(d.mocap_pos), _view(d.sensordata)

        self._per_world: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        """Model field name -> (per-world values, file values); see _field."""
        self._graphs: dict[tuple[str, int], wp.Graph] = {}
        """(kind, substeps) -> captured graph; see _launch."""
        self._renderers = RendererPool(model)
        self._refresh()

    # -- stepping ------------------------------------------------------------------------------

    def step(self, ctrl: torch.Tensor, substeps: int) -> None:
        self._ctrl.copy_(ctrl.detach())
        self._warmstart.zero_()  # each native control step is a rollout from a zero warmstart
        self._launch("step", substeps)
        self._refresh()

    def _launch(self, kind: str, substeps: int = 1) -> None:
        """Run ``substeps`` calls of ``mjw.step`` (kind "step") or one ``mjw.forward`` through a
        graph captured on first use and replayed afterwards.

        Replaying skips the Python side of several hundred kernel launches per control step:
        on the CPU that is most of the time (0.3 ms instead of 4 ms per Panda substep, results
        bit-identical), on CUDA it is the usual CUDA-graph saving.
        """
        key = (kind, substeps)
        with on_device(self._wp_device):
            graph = self._graphs.get(key)
            if graph is None:
                with wp.ScopedCapture(device=self._wp_device) as capture:
                    if kind == "forward":
                        mjw.forward(self._m, self._d)
                    else:
                        for _ in range(substeps):
                            mjw.step(self._m, self._d)
                graph = self._graphs[key] = capture.graph
            wp.capture_launch(graph)

    def set_state(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor,
                  mocap_pos: torch.Tensor | None = None) -> None:
        ids = env_ids.to(self.device, torch.long)
        self._qpos[ids] = qpos.to(self._qpos)
        self._qvel[ids] = qvel.to(self._qvel)
        if mocap_pos is not None:
            self._mocap_pos[ids] = mocap_pos.to(self._mocap_pos).reshape(len(ids), -1, 3)
        for part in (self._time, self._act, self._history, self._plastic, self._ctrl):
            part[ids] = 0.0  # native computes the new sensors with zero control
        # Forward dynamics runs on every world; only the reset ones take the new sensor values.
        reset = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        reset[ids] = True
        kept = self._sensordata.clone()
        self._launch("forward")
        self._sensordata.copy_(torch.where(reset[:, None], self._sensordata, kept))
        self._refresh()

    def apply_wrench(self, body: str, wrench: torch.Tensor) -> None:
        self._xfrc[:, self.layout.body(body)] = wrench.detach().to(self._xfrc)

    # -- randomisation -------------------------------------------------------------------------

    def set_dynamics(self, env_ids: torch.Tensor, mass_scale: torch.Tensor, friction_scale: torch.Tensor,
                     gain_scale: torch.Tensor, bodies: tuple[str, ...] = ()) -> None:
        ids = env_ids.to(self.device, torch.long)
        rows = ids[:, None]
        mass, friction, gain = (s.to(self.device, torch.float32)[:, None] for s in
                                (mass_scale, friction_scale, gain_scale))
        body_ids = [self.layout.body(b) for b in bodies] if bodies else range(self.model.nbody)
        cols = torch.as_tensor(list(body_ids), dtype=torch.long, device=self.device)
        servos = torch.as_tensor(position_actuators(self.model), dtype=torch.long, device=self.device)

        # Each field: (per-world view, value in the model file).
        body_mass, body_mass0 = self._field("body_mass")
        inertia, inertia0 = self._field("body_inertia")
        friction_, friction0 = self._field("geom_friction")
        gainprm, gainprm0 = self._field("actuator_gainprm")
        biasprm, biasprm0 = self._field("actuator_biasprm")
        body_mass[rows, cols] = body_mass0[cols] * mass
        inertia[rows, cols] = inertia0[cols] * mass[..., None]
        friction_[ids, :, 0] = friction0[:, 0] * friction
        gainprm[rows, servos, 0] = gainprm0[servos, 0] * gain
        biasprm[rows, servos, 1] = biasprm0[servos, 1] * gain

    def _field(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Model field ``name`` with one row per world, as a view float32[N, ...], and its value
        in the model file float32[...].

        The model shares one row among all worlds until a field is first randomised; then the
        row is replicated N times (kernels read row ``worldid % rows``)."""
        if name not in self._per_world:
            shared = getattr(self._m, name)
            file_values = _view(shared)[0].clone()
            # Torch allocates (on its stream, like every other write here); Warp borrows it.
            per_world = file_values.expand(self.num_envs, *file_values.shape).contiguous()
            setattr(self._m, name, wp.from_torch(per_world, dtype=shared.dtype, requires_grad=False))
            self._per_world[name] = (per_world, file_values)
            self._graphs.clear()  # captured graphs point at the replaced array
        return self._per_world[name]

    # -- reading -------------------------------------------------------------------------------

    def _refresh(self) -> None:
        self.qpos = self._qpos.clone()
        self.qvel = self._qvel.clone()
        self.sensordata = self._sensordata.clone()
        self.mocap_pos = self._mocap_pos.clone()

    def sensor(self, name: str) -> torch.Tensor:
        """float32[N, dim] of the named sensor."""
        return self.sensordata[:, self.layout.sensor(name)]

    def render(self, camera: str, height: int, width: int, env_ids: torch.Tensor | None = None,
               antialias: bool = True) -> torch.Tensor:
        ids = slice(None) if env_ids is None else env_ids.to(self.device, torch.long)
        qpos = self.qpos[ids].cpu().numpy()
        mocap = self.mocap_pos[ids].cpu().numpy() if self.model.nmocap else None
        images = self._renderers.render(camera, height, width, qpos, mocap, antialias)
        return torch.from_numpy(images).to(self.device)

    def render_rgbd(self, camera: str, height: int, width: int, env_ids: torch.Tensor | None = None) -> RGBD:
        """RGB-D images of ``camera`` in worlds ``env_ids`` (all when None), rendered as
        :meth:`render` is (EGL); see :class:`~robot_rl.envs.backend.DepthBackend`."""
        ids = slice(None) if env_ids is None else env_ids.to(self.device, torch.long)
        qpos = self.qpos[ids].cpu().numpy()
        mocap = self.mocap_pos[ids].cpu().numpy() if self.model.nmocap else None
        rgb, depth, poses, intrinsics = self._renderers.render_rgbd(camera, height, width, qpos, mocap)
        to = self.device
        return RGBD(torch.from_numpy(rgb).to(to), torch.from_numpy(depth).to(to), torch.from_numpy(poses).to(to),
                    intrinsics)

    def close(self) -> None:
        self._renderers.close()
        self._graphs.clear()


def _torch_device(device: str | None) -> torch.device:
    """``device`` (``cuda`` when available by default) with an explicit CUDA index, as Warp needs."""
    resolved = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", torch.cuda.current_device())
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"MuJoCo Warp runs on 'cpu' or 'cuda', not {device!r}")
    return resolved

