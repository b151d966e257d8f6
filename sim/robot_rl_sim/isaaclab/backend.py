"""Isaac Lab backend: N worlds of one MJCF scene in a kit-less Isaac Lab simulation (Newton
with MuJoCo Warp as its solver), behind :class:`robot_rl.envs.backend.Backend`.

Tasks address state the MuJoCo way: ``qpos``/``qvel`` in the MJCF's joint order (free joints as
position + (w, x, y, z) quaternion and linear world / angular local velocity), ``sensordata``
laid out as in the compiled model, mocap bodies in ``mocap_pos``. This backend fills those
arrays from Isaac Lab's articulation and rigid-object data, so the task modules of
:mod:`robot_rl_sim.tasks` run unchanged.

What differs from the MuJoCo backends (see docs/isaaclab.md):

- Sensors are recomputed from body states after the control step (MuJoCo evaluates them
  before the last substep, so native sensors lag the state by one substep). Frame sensors,
  gyro and velocimeter are exact functions of the state; a touch sensor reads the norm of
  the net normal contact force on the body carrying its site (MuJoCo sums the normal forces
  of the contacts inside the site's volume only).
- Contacts go through Newton's model of the scene, which filters some contacts MuJoCo counts.
- Position offsets: every world sits at its own origin in one Isaac Lab stage; states here
  are relative to that origin, as in MuJoCo.
- No rendering: the MJCF -> USD conversion drops cameras and lights.
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch
from isaaclab.scene import InteractiveScene
from isaaclab.sim import SimulationContext
from isaaclab.sim.utils.stage import use_stage

from robot_rl.envs.backend import Layout
from robot_rl_sim.isaaclab.config import (
    ScenePlan,
    descends,
    plan_scene,
    scene_cfg,
    simulation_cfg,
    use_servo_target_mode,
)
from robot_rl_sim.isaaclab.usd import UsdAsset, check_supported, usd_for_scene
from robot_rl_sim.mjcf import build_layout, load_model, position_actuators


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of (w, x, y, z) quaternions float[..., 4]."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], dim=-1)


def quat_apply(q: torch.Tensor, v: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Rotate v float[..., 3] by the (w, x, y, z) quaternion q float[..., 4] (or its inverse)."""
    w, xyz = q[..., :1], q[..., 1:]
    if inverse:
        xyz = -xyz
    t = 2.0 * torch.cross(xyz, v, dim=-1)
    return v + w * t + torch.cross(xyz, t, dim=-1)


def _wxyz(q_xyzw: torch.Tensor) -> torch.Tensor:
    return torch.cat([q_xyzw[..., 3:], q_xyzw[..., :3]], dim=-1)


def _xyzw(q_wxyz: torch.Tensor) -> torch.Tensor:
    return torch.cat([q_wxyz[..., 1:], q_wxyz[..., :1]], dim=-1)


def default_device(device: str | None) -> str:
    if device is None:
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    return "cuda:0" if device == "cuda" else device


class IsaacLabBackend:
    """Implements :class:`robot_rl.envs.backend.Backend` on Isaac Lab (one per process: Isaac
    Lab keeps a single simulation context; ``close`` releases it)."""

    one_per_process = True
    """Close it before building another (the trainer does so before its final evaluation)."""

    def __init__(self, scene: str, num_envs: int, device: str | None = None, cache_dir: str | None = None,
                 env_spacing: float = 3.0, graphs: bool = True) -> None:
        """Convert ``scene`` (an MJCF path relative to ``models/``) to USD, or reuse the cached
        file in ``cache_dir`` (default ``~/.cache/robot_rl/usd``), and build ``num_envs`` worlds.
        ``graphs=False`` launches every physics kernel from Python instead of replaying a
        recorded graph of the control step (same results, slower)."""
        model, plan, asset = prepare(scene, cache_dir)
        if SimulationContext.instance() is not None:
            raise RuntimeError("an Isaac Lab simulation already runs in this process; close() it first "
                               "(Isaac Lab keeps one simulation context per process)")
        sim_cfg = simulation_cfg(model, default_device(device), graphs)
        sim = SimulationContext(sim_cfg)
        try:
            with use_stage(sim.stage):
                world = InteractiveScene(scene_cfg(model, plan, str(asset.path), num_envs, env_spacing))
            sim.register_interactive_scene(world)
            use_servo_target_mode(sim, plan)
            with use_stage(sim.stage):
                sim.reset()
            world.update(dt=sim_cfg.dt)
        except Exception:
            sim.clear_instance()
            raise
        self.usd = asset
        self._owns_sim = True
        self._bind(model, plan, sim, world)
        # Start where the MuJoCo backends start: the model's qpos0 at rest.
        qpos0 = torch.tensor(model.qpos0, dtype=torch.float32, device=self.device).repeat(num_envs, 1)
        self.set_state(torch.arange(num_envs, device=self.device), qpos0,
                       torch.zeros(num_envs, model.nv, device=self.device))

    @classmethod
    def attach(cls, model: mujoco.MjModel, plan: ScenePlan, sim: SimulationContext,
               world: InteractiveScene) -> IsaacLabBackend:
        """A backend over a simulation someone else built and steps (an Isaac Lab env)."""
        self = cls.__new__(cls)
        self._owns_sim = False
        self._bind(model, plan, sim, world)
        return self

    # -- construction ----------------------------------------------------------------------

    def _bind(self, model: mujoco.MjModel, plan: ScenePlan, sim: SimulationContext, world: InteractiveScene) -> None:
        self.model = model
        self.layout: Layout = build_layout(model)
        self.sim_context, self.scene = sim, world
        self.num_envs = n = world.num_envs
        self.device = torch.device(sim.device)
        self._dt = float(model.opt.timestep)
        self._decimation = 1
        self._origins = world.env_origins.to(self.device)
        dev = self.device
        body_name = {i: mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, i) for i in range(model.nbody)}

        # Joints: (entity, isaac joint indices, qpos columns, qvel columns) per articulation.
        self._joints = []
        self._roots = []  # (entity, qpos start, qvel start) of free-floating roots
        self._body_source: dict[int, tuple[str, object, int]] = {}
        for key, root in plan.articulations.items():
            art = world[key]
            idx, qcols, vcols = [], [], []
            for j in range(model.njnt):
                if not descends(model, int(model.jnt_bodyid[j]), root):
                    continue
                if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
                    self._roots.append((art, int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])))
                    continue
                name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)
                idx.append(art.joint_names.index(name))
                qcols.append(int(model.jnt_qposadr[j]))
                vcols.append(int(model.jnt_dofadr[j]))
            self._joints.append((art, *(torch.tensor(x, dtype=torch.long, device=dev) for x in (idx, qcols, vcols))))
            for b in range(model.nbody):
                if descends(model, b, root):
                    self._body_source[b] = ("link", art, art.body_names.index(body_name[b]))
        for key, b in plan.rigid_objects.items():
            obj = world[key]
            j = int(model.body_jntadr[b])
            self._roots.append((obj, int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])))
            self._body_source[b] = ("root", obj, 0)
        self._touch = {b: world[key] for key, b in plan.touch_bodies.items()}

        # Actuators: servos take ctrl as a position target, motors a scaled effort.
        self._servos, self._motors = [], []
        for act in plan.actuation:
            art = next(a for a, *_ in self._joints if act.joint in a.joint_names)
            entry = (art, act.actuator, art.joint_names.index(act.joint), act.effort_scale)
            (self._servos if act.servo else self._motors).append(entry)
        # Per articulation and kind: (articulation, ctrl columns, joint indices, scales), one write each.
        self._commands = []
        for kind, entries in (("position", self._servos), ("effort", self._motors)):
            for art in {id(e[0]): e[0] for e in entries}.values():
                own = [e for e in entries if e[0] is art]
                self._commands.append((kind, art, *(torch.tensor([e[i] for e in own], device=dev) for i in (1, 2, 3))))
        limited = model.actuator_ctrllimited.astype(bool)
        self._ctrl_low = torch.tensor(np.where(limited, model.actuator_ctrlrange[:, 0], -np.inf),
                                      dtype=torch.float32, device=dev)
        self._ctrl_high = torch.tensor(np.where(limited, model.actuator_ctrlrange[:, 1], np.inf),
                                       dtype=torch.float32, device=dev)

        # Static bodies and mocap bodies: poses from the model (mocap: from mocap_pos).
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        self._static_pose = {b: (torch.tensor(data.xpos[b], dtype=torch.float32, device=dev),
                                 torch.tensor(data.xquat[b], dtype=torch.float32, device=dev))
                             for b in range(model.nbody) if b not in self._body_source}
        self.mocap_pos = torch.tensor(data.mocap_pos, dtype=torch.float32, device=dev).repeat(n, 1, 1)
        self._mocap_quat = torch.tensor(data.mocap_quat, dtype=torch.float32, device=dev)
        self._sensors = _sensor_program(model)
        self._wrenches: dict[str, torch.Tensor] = {}
        self.refresh()

    # -- stepping ------------------------------------------------------------------------------

    def step(self, ctrl: torch.Tensor, substeps: int) -> None:
        self.apply_ctrl(ctrl)
        manager = self.sim_context.physics_manager
        if substeps != self._decimation:
            manager.set_decimation(substeps)
            self._decimation = substeps
        calls = 1 if manager.handles_decimation() else substeps
        for _ in range(calls):
            self.scene.write_data_to_sim()
            self.sim_context.step(render=False)
            self.scene.update(dt=self._dt * substeps / calls)
        self.refresh()

    def apply_ctrl(self, ctrl: torch.Tensor) -> None:
        """Write controls float32[N, nu] as joint targets (clamped to ctrlrange, as MuJoCo does)."""
        ctrl = torch.clamp(ctrl.detach().to(self.device, torch.float32), self._ctrl_low, self._ctrl_high)
        for kind, art, columns, joints, scales in self._commands:
            if kind == "position":
                art.actuators.target_command.set_position_index(value=ctrl[:, columns].contiguous(), joint_ids=joints)
            else:
                art.actuators.target_command.set_effort_index(value=(scales * ctrl[:, columns]).contiguous(),
                                                              joint_ids=joints)

    def set_state(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor,
                  mocap_pos: torch.Tensor | None = None) -> None:
        ids = env_ids.to(self.device, torch.long)
        qpos, qvel = qpos.to(self.device, torch.float32), qvel.to(self.device, torch.float32)
        for art, idx, qcols, vcols in self._joints:
            if len(idx):
                art.write_joint_position_to_sim_index(position=qpos[:, qcols], joint_ids=idx, env_ids=ids)
                art.write_joint_velocity_to_sim_index(velocity=qvel[:, vcols], joint_ids=idx, env_ids=ids)
        for entity, q0, v0 in self._roots:
            quat = qpos[:, q0 + 3:q0 + 7]
            pose = torch.cat([qpos[:, q0:q0 + 3] + self._origins[ids], _xyzw(quat)], dim=1)
            twist = torch.cat([qvel[:, v0:v0 + 3], quat_apply(quat, qvel[:, v0 + 3:v0 + 6])], dim=1)
            entity.write_root_link_pose_to_sim_index(root_pose=pose, env_ids=ids)
            entity.write_root_link_velocity_to_sim_index(root_velocity=twist, env_ids=ids)
        if mocap_pos is not None:
            self.mocap_pos[ids] = mocap_pos.to(self.mocap_pos).reshape(len(ids), -1, 3)
        self.scene.write_data_to_sim()
        self.sim_context.forward()
        self.scene.update(dt=0.0)
        self.refresh()

    def apply_wrench(self, body: str, wrench: torch.Tensor) -> None:
        b = self.layout.body(body)
        source = self._body_source.get(b)
        if source is None:
            raise ValueError(f"body {body!r} does not move in the Isaac Lab scene, so it cannot be pushed")
        _, entity, index = source
        wrench = wrench.detach().to(self.device, torch.float32)
        entity.permanent_wrench_composer.set_forces_and_torques_index(
            forces=wrench[:, None, :3], torques=wrench[:, None, 3:], body_ids=[index], is_global=True)

    def set_dynamics(self, env_ids: torch.Tensor, mass_scale: torch.Tensor, friction_scale: torch.Tensor,
                     gain_scale: torch.Tensor, bodies: tuple[str, ...] = ()) -> None:
        """Scales servo stiffness (kp) and body masses with their inertias, as the MuJoCo backends
        do; friction scaling has no per-world counterpart here and must stay 1."""
        if not torch.all(friction_scale == 1.0):
            raise ValueError("the Isaac Lab backend cannot scale friction per world; "
                             "set randomization.friction_scale to (1.0, 1.0)")
        ids = env_ids.to(self.device, torch.long)
        gain = gain_scale.to(self.device, torch.float32)[:, None]
        servos = set(position_actuators(self.model).tolist())
        for art, a, joint, _ in self._servos:
            if a in servos:
                kp = float(self.model.actuator_gainprm[a, 0])
                art.write_joint_stiffness_to_sim_index(stiffness=kp * gain, joint_ids=[joint], env_ids=ids)
        mass = mass_scale.to(self.device, torch.float32)[:, None]
        wanted = {self.layout.body(b) for b in bodies} if bodies else set(self._body_source)
        for b in sorted(wanted):
            if b not in self._body_source:
                continue
            _, entity, index = self._body_source[b]
            entity.set_masses_index(masses=float(self.model.body_mass[b]) * mass, body_ids=[index], env_ids=ids)
            # The MJCF's principal inertia turned into the body frame; a mass scale scales it alike.
            principal = torch.tensor(self.model.body_inertia[b], dtype=torch.float32, device=self.device)
            rotation = _rotation_matrix(torch.tensor(self.model.body_iquat[b], dtype=torch.float32, device=self.device))
            inertia = rotation @ torch.diag(principal) @ rotation.T
            entity.set_inertias_index(inertias=(inertia.reshape(1, 1, 9) * mass[:, :, None]).contiguous(),
                                      body_ids=[index], env_ids=ids)

    # -- reading -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the simulation's state into ``qpos``, ``qvel`` and ``sensordata`` (``step`` and
        ``set_state`` do; an Isaac Lab env that stepped the simulation itself calls this)."""
        n, dev = self.num_envs, self.device
        qpos = torch.zeros(n, self.model.nq, device=dev)
        qvel = torch.zeros(n, self.model.nv, device=dev)
        for art, idx, qcols, vcols in self._joints:
            if len(idx):
                qpos[:, qcols] = art.data.joint_pos.torch[:, idx]
                qvel[:, vcols] = art.data.joint_vel.torch[:, idx]
        for entity, q0, v0 in self._roots:
            pose, twist = entity.data.root_link_pose_w.torch, entity.data.root_link_vel_w.torch
            quat = _wxyz(pose[:, 3:7])
            qpos[:, q0:q0 + 3] = pose[:, :3] - self._origins
            qpos[:, q0 + 3:q0 + 7] = quat
            qvel[:, v0:v0 + 3] = twist[:, :3]
            qvel[:, v0 + 3:v0 + 6] = quat_apply(quat, twist[:, 3:6], inverse=True)
        self.qpos, self.qvel = qpos, qvel
        self.sensordata = self._evaluate_sensors()

    def _frame(self, body: int) -> tuple[torch.Tensor, ...]:
        """World pose (relative to the world's origin) and velocity of a body's frame:
        pos float[N,3], quat (w,x,y,z) float[N,4], linear and angular velocity float[N,3]."""
        source = self._body_source.get(body)
        if source is None:
            mocap = int(self.model.body_mocapid[body])
            zeros = torch.zeros(self.num_envs, 3, device=self.device)
            if mocap >= 0:
                quat = self._mocap_quat[mocap].expand(self.num_envs, 4)
                return self.mocap_pos[:, mocap], quat, zeros, zeros
            pos, quat = self._static_pose[body]
            return pos.expand(self.num_envs, 3), quat.expand(self.num_envs, 4), zeros, zeros
        kind, entity, index = source
        if kind == "root":
            pose, twist = entity.data.root_link_pose_w.torch, entity.data.root_link_vel_w.torch
        else:
            pose, twist = entity.data.body_link_pose_w.torch[:, index], entity.data.body_link_vel_w.torch[:, index]
        return pose[:, :3] - self._origins, _wxyz(pose[:, 3:7]), twist[:, :3], twist[:, 3:6]

    def _evaluate_sensors(self) -> torch.Tensor:
        out = torch.zeros(self.num_envs, self.model.nsensordata, device=self.device)
        frames: dict[int, tuple[torch.Tensor, ...]] = {}
        for kind, body, offset, rotation, columns in self._sensors:
            if body not in frames:
                frames[body] = self._frame(body)
            pos, quat, lin, ang = frames[body]
            if kind == mujoco.mjtSensor.mjSENS_TOUCH:
                force = self._touch[body].data.net_normal_forces_w.torch
                out[:, columns] = torch.linalg.norm(force.reshape(self.num_envs, -1, 3), dim=-1).sum(1, keepdim=True)
                continue
            local = torch.as_tensor(offset, device=self.device).expand_as(pos)
            point = pos + quat_apply(quat, local)
            frame_quat = quat_mul(quat, torch.as_tensor(rotation, device=self.device).expand_as(quat))
            if kind == mujoco.mjtSensor.mjSENS_FRAMEPOS:
                value = point
            elif kind == mujoco.mjtSensor.mjSENS_FRAMEQUAT:
                value = frame_quat
            elif kind == mujoco.mjtSensor.mjSENS_FRAMEZAXIS:
                value = quat_apply(frame_quat, torch.tensor([0.0, 0.0, 1.0], device=self.device).expand_as(pos))
            elif kind == mujoco.mjtSensor.mjSENS_GYRO:
                value = quat_apply(frame_quat, ang, inverse=True)
            else:
                velocity = lin + torch.cross(ang, point - pos, dim=1)
                value = quat_apply(frame_quat, velocity, inverse=True) if kind == mujoco.mjtSensor.mjSENS_VELOCIMETER \
                    else velocity
            out[:, columns] = value
        return out

    def sensor(self, name: str) -> torch.Tensor:
        """float32[N, dim] of the named sensor."""
        return self.sensordata[:, self.layout.sensor(name)]

    def render(self, camera: str, height: int, width: int, env_ids: torch.Tensor | None = None,
               antialias: bool = True) -> torch.Tensor:
        raise RuntimeError("the Isaac Lab backend does not render (the MJCF -> USD conversion drops cameras); "
                           "use backend 'native' or 'warp' for images")

    def close(self) -> None:
        if self._owns_sim and SimulationContext.instance() is self.sim_context:
            self.sim_context.stop()
            del self.scene
            self.sim_context.clear_instance()
            self._owns_sim = False


def prepare(scene: str, cache_dir: str | None = None) -> tuple[mujoco.MjModel, ScenePlan, UsdAsset]:
    """Compile ``scene``, check that Isaac Lab can carry it, and convert it to USD (cached)."""
    model = load_model(scene)
    check_supported(model, scene)
    return model, plan_scene(model), usd_for_scene(scene, cache_dir)


def _rotation_matrix(q: torch.Tensor) -> torch.Tensor:
    """float[3, 3] of a (w, x, y, z) unit quaternion."""
    return torch.stack([quat_apply(q, axis) for axis in torch.eye(3, device=q.device)], dim=1)


def _sensor_program(model: mujoco.MjModel) -> list[tuple]:
    """Per sensor: (type, body, offset in the body frame, rotation (w,x,y,z), sensordata columns)."""
    program = []
    for s in range(model.nsensor):
        kind = mujoco.mjtSensor(model.sensor_type[s])
        columns = slice(int(model.sensor_adr[s]), int(model.sensor_adr[s] + model.sensor_dim[s]))
        objtype, obj = mujoco.mjtObj(model.sensor_objtype[s]), int(model.sensor_objid[s])
        if objtype == mujoco.mjtObj.mjOBJ_SITE:
            body, offset, rotation = int(model.site_bodyid[obj]), model.site_pos[obj], model.site_quat[obj]
        elif objtype == mujoco.mjtObj.mjOBJ_BODY:  # frame sensors of a body use its inertial frame
            body, offset, rotation = obj, model.body_ipos[obj], model.body_iquat[obj]
        else:
            body, offset, rotation = obj, np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0])
        program.append((kind, body, tuple(float(x) for x in offset), tuple(float(x) for x in rotation), columns))
    return program
