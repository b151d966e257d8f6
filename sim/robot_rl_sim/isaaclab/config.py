"""Isaac Lab configurations built from a compiled MJCF model: the scene (articulations, free
rigid bodies, contact sensors for touch sensors) and the kit-less simulation.

The converted USD holds bodies, joints, geoms, masses, joint properties and the MJCF actuators;
Newton reads the actuators (and their force ranges) into its MuJoCo model, but Isaac Lab's
articulation needs its own actuator models, so each one is declared here from the compiled
model: a position servo (gain kp, bias -kp·q - kv·q̇, force range) becomes an implicit
actuator with stiffness kp, damping kv and the same effort limit; a motor becomes an implicit
actuator with zero gains driven by effort targets.

Isaac Lab gives an implicit actuator with both gains Newton's POSITION_VELOCITY target mode:
two MuJoCo actuators, a position term clamped to the effort limit and a damping term that is
never clamped. A MuJoCo position servo clamps the sum. :func:`use_servo_target_mode` switches
our servos to Newton's POSITION mode (one actuator with gain kp, bias -kp·q - kv·q̇ and the
force range), which is MuJoCo's servo exactly; without it a saturated Panda joint creeps at
effort_limit / (kv + joint damping) (0.86 rad/s) instead of accelerating.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import isaaclab.sim as sim_utils
import mujoco
import numpy as np
from isaaclab.actuators import ImplicitActuatorCfg
from isaaclab.assets import ArticulationCfg, RigidObjectCfg
from isaaclab.physics import PhysicsEvent
from isaaclab.scene import InteractiveSceneCfg
from isaaclab.sensors import ContactSensorCfg
from isaaclab.sim import SimulationCfg, SimulationContext
from isaaclab_newton.physics import MJWarpSolverCfg, NewtonBuilderCfg, NewtonCfg
from newton import JointTargetMode

from robot_rl_sim.isaaclab.physics import NewtonRecordedCpuMJWarpManager

_INTEGRATORS = {mujoco.mjtIntegrator.mjINT_EULER: "euler", mujoco.mjtIntegrator.mjINT_IMPLICITFAST: "implicitfast",
                mujoco.mjtIntegrator.mjINT_RK4: "rk4"}
_CONES = {mujoco.mjtCone.mjCONE_PYRAMIDAL: "pyramidal", mujoco.mjtCone.mjCONE_ELLIPTIC: "elliptic"}
SCENE_PRIM = "{ENV_REGEX_NS}/Scene"
"""Where each world's copy of the converted USD is spawned."""


def _name(model: mujoco.MjModel, obj: mujoco.mjtObj, i: int) -> str:
    return mujoco.mj_id2name(model, obj, i) or ""


def body_prim(model: mujoco.MjModel, body: int) -> str:
    """Prim path of a body in the spawned USD (the converter nests bodies as in the MJCF)."""
    chain = []
    while body != 0:
        chain.append(_name(model, mujoco.mjtObj.mjOBJ_BODY, body))
        body = int(model.body_parentid[body])
    return f"{SCENE_PRIM}/Geometry/" + "/".join(reversed(chain))


def xyzw(wxyz) -> tuple[float, float, float, float]:
    """MuJoCo's (w, x, y, z) quaternion in Isaac Lab's (x, y, z, w) order."""
    w, x, y, z = (float(v) for v in wxyz)
    return (x, y, z, w)


@dataclass(frozen=True)
class Actuation:
    """How one MJCF actuator reaches Isaac Lab."""

    actuator: int
    joint: str
    servo: bool
    """True: ctrl is a joint position target. False (motor): gear·gain·ctrl is a joint effort."""
    effort_scale: float = 1.0
    effort_limit: float = 1e9
    """Largest force magnitude (the MJCF forcerange; 1e9 when unlimited)."""


@dataclass
class ScenePlan:
    """The Isaac Lab pieces of one MJCF model, keyed by scene entity name."""

    articulations: dict[str, int] = field(default_factory=dict)
    """Entity name -> top-level MuJoCo body of an articulation."""
    rigid_objects: dict[str, int] = field(default_factory=dict)
    """Entity name -> MuJoCo body with a free joint and no children."""
    touch_bodies: dict[str, int] = field(default_factory=dict)
    """Entity name of a contact sensor -> MuJoCo body holding a touch sensor's site."""
    actuation: list[Actuation] = field(default_factory=list)


def plan_scene(model: mujoco.MjModel) -> ScenePlan:
    plan = ScenePlan()
    for b in range(1, model.nbody):
        if model.body_parentid[b] != 0 or model.body_mocapid[b] >= 0:
            continue
        name = _name(model, mujoco.mjtObj.mjOBJ_BODY, b)
        subtree = [c for c in range(model.nbody) if descends(model, c, b)]
        if not any(model.body_jntnum[c] for c in subtree):
            continue  # static geometry: part of the world
        free = model.body_jntnum[b] == 1 and model.jnt_type[model.body_jntadr[b]] == mujoco.mjtJoint.mjJNT_FREE
        if free and len(subtree) == 1:
            plan.rigid_objects[f"object_{name}"] = b
        else:
            plan.articulations[f"robot_{name}"] = b
    for s in range(model.nsensor):
        if model.sensor_type[s] == mujoco.mjtSensor.mjSENS_TOUCH:
            body = int(model.site_bodyid[model.sensor_objid[s]])
            plan.touch_bodies[f"touch_{_name(model, mujoco.mjtObj.mjOBJ_BODY, body)}"] = body
    for a in range(model.nu):
        joint = _name(model, mujoco.mjtObj.mjOBJ_JOINT, int(model.actuator_trnid[a, 0]))
        servo = model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE
        scale = float(model.actuator_gear[a, 0] * model.actuator_gainprm[a, 0])
        limit = float(np.abs(model.actuator_forcerange[a]).max()) if model.actuator_forcelimited[a] else 1e9
        plan.actuation.append(Actuation(a, joint, bool(servo), 1.0 if servo else scale, limit))
    return plan


def descends(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    """True when ``body`` is ``ancestor`` or below it in the kinematic tree."""
    while body > 0:
        if body == ancestor:
            return True
        body = int(model.body_parentid[body])
    return False


def _actuator_cfgs(model: mujoco.MjModel, plan: ScenePlan) -> dict[str, ImplicitActuatorCfg]:
    cfgs = {}
    for act in plan.actuation:
        a = act.actuator
        dof = int(model.jnt_dofadr[model.actuator_trnid[a, 0]])
        cfgs[_name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, a) or f"actuator{a}"] = ImplicitActuatorCfg(
            joint_names_expr=[act.joint],
            stiffness=float(model.actuator_gainprm[a, 0]) if act.servo else 0.0,
            damping=float(-model.actuator_biasprm[a, 2]) if act.servo else 0.0,
            joint_effort_limit=act.effort_limit,
            armature=float(model.dof_armature[dof]),
        )
    return cfgs


def _initial_joints(model: mujoco.MjModel, root: int) -> dict[str, float]:
    """Joint name -> qpos0 (moved into the joint's range, which Isaac Lab insists on)."""
    positions = {}
    for j in range(model.njnt):
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE or not descends(model, int(model.jnt_bodyid[j]), root):
            continue
        q = float(model.qpos0[model.jnt_qposadr[j]])
        if model.jnt_limited[j]:
            q = float(np.clip(q, *model.jnt_range[j]))
        positions[_name(model, mujoco.mjtObj.mjOBJ_JOINT, j)] = q
    return positions


def scene_cfg(model: mujoco.MjModel, plan: ScenePlan, usd_path: str, num_envs: int,
              env_spacing: float = 3.0) -> InteractiveSceneCfg:
    if not plan.articulations:
        raise ValueError("the Isaac Lab backend needs a model with at least one jointed body tree")
    cfg = InteractiveSceneCfg(num_envs=num_envs, env_spacing=env_spacing, replicate_physics=True)
    actuators = _actuator_cfgs(model, plan)
    spawn = sim_utils.UsdFileCfg(usd_path=usd_path)
    for key, b in plan.articulations.items():
        joints = _initial_joints(model, b)
        own = {k: v for k, v in actuators.items() if v.joint_names_expr[0] in joints}
        # The spawned file already places every body as in the MJCF; an initial root pose here
        # would move the whole file (floor included) by it.
        state = ArticulationCfg.InitialStateCfg(joint_pos=joints)
        root = body_prim(model, b)[len(SCENE_PRIM):]  # names the tree when a file holds several
        setattr(cfg, key, ArticulationCfg(prim_path=SCENE_PRIM, spawn=spawn, init_state=state, actuators=own,
                                          articulation_root_prim_path=root))
        spawn = None  # the first asset spawns the file; later ones find their prims in it
    for key, b in plan.rigid_objects.items():
        state = RigidObjectCfg.InitialStateCfg(pos=tuple(float(x) for x in model.body_pos[b]),
                                               rot=xyzw(model.body_quat[b]))
        setattr(cfg, key, RigidObjectCfg(prim_path=body_prim(model, b), spawn=spawn, init_state=state))
        spawn = None
    for key, b in plan.touch_bodies.items():
        setattr(cfg, key, ContactSensorCfg(prim_path=body_prim(model, b)))
    return cfg


def simulation_cfg(model: mujoco.MjModel, device: str, graphs: bool = True) -> SimulationCfg:
    """Kit-less simulation with MuJoCo Warp as Newton's solver, with the MJCF's options.

    ``graphs``: replay the step loop as a recorded graph (CUDA graph on a GPU, Warp's recorded
    CPU graph on the CPU, see :mod:`robot_rl_sim.isaaclab.physics`) instead of launching
    every kernel from Python."""
    opt = model.opt
    integrator = _INTEGRATORS.get(mujoco.mjtIntegrator(opt.integrator))
    if integrator is None:
        raise ValueError(f"integrator {mujoco.mjtIntegrator(opt.integrator).name} has no MuJoCo Warp counterpart")
    collides = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    nconmax = max(48, 4 * int(np.count_nonzero(collides & (model.body_weldid[model.geom_bodyid] != 0))))
    solver = MJWarpSolverCfg(
        class_type=NewtonRecordedCpuMJWarpManager,
        integrator=integrator,
        cone=_CONES[mujoco.mjtCone(opt.cone)],
        impratio=float(opt.impratio),
        iterations=int(opt.iterations),
        ls_iterations=int(opt.ls_iterations),
        tolerance=float(opt.tolerance),
        nconmax=nconmax,
        njmax=max(64, nconmax * int(model.geom_condim.max(initial=1)) + int(np.count_nonzero(model.jnt_limited))
                  + 6 * model.neq),
    )
    return SimulationCfg(
        dt=float(opt.timestep),
        device=device,
        gravity=tuple(float(g) for g in opt.gravity),
        physics=NewtonCfg(solver_cfg=solver, num_substeps=1, use_cuda_graph=graphs),
    )


def use_servo_target_mode(sim: SimulationContext, plan: ScenePlan) -> None:
    """Before the physics model is built, give every servo joint Newton's POSITION target mode
    and its force range (runs after Isaac Lab's own target-mode setup; see the module
    docstring). Newton copies the range into the MuJoCo actuator only at this point; the
    effort limit Isaac Lab writes later does not reach it."""
    limits = {act.joint: act.effort_limit for act in plan.actuation if act.servo}

    def configure(_event) -> None:
        builder = sim.get_or_create_backend(NewtonBuilderCfg(physics_cfg=sim.cfg.physics))
        for joint, label in enumerate(builder.joint_label):
            name = label.rsplit("/", maxsplit=1)[-1]
            if name in limits:
                dof = builder.joint_qd_start[joint]
                builder.joint_target_mode[dof] = int(JointTargetMode.POSITION)
                builder.joint_effort_limit[dof] = limits[name]

    sim.physics_manager.register_callback(configure, PhysicsEvent.MODEL_INIT, order=100,
                                          name="robot_rl_servo_target_mode", wrap_weak_ref=False)
