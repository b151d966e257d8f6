"""Scripted Panda episodes of mixed quality, rendered, for evaluating learned rewards.

A learned reward is judged by how well it tracks a task's ground-truth progress on episodes
that make progress, stall and undo it. No trained policy is needed to get those: a script
gives, for a phase s in [0, 1], where the gripper tip should be (and where the objects are);
a small damped-least-squares IK turns tip targets into arm joints, frame by frame; each
frame's state is written with ``set_state`` and rendered. Physics never runs, so objects
move exactly as scripted (the cube of panda_push slides along its path).

Episode qualities, by how the phase evolves over time:

- ``expert``: s rises smoothly from 0 to 1, reached at 80% of the episode, then holds.
- ``noisy``: as expert, with an uneven, sometimes backwards pace, stopping short of 1, and
  smooth joint noise on top.
- ``regressing``: s rises to 0.5-0.9 by mid-episode, then falls back towards 0.
- ``random``: the arm wanders (smooth random joint offsets); objects stay put.

Usage (native backend; any image size and cameras the task has)::

    env = robot_rl.envs.make("panda_reach", num_envs=4, image_cameras=("front",), image_size=(64, 64))
    episodes = render_episodes(env, ["expert", "noisy", "regressing", "random"], num_steps=40, seed=0)
    episodes[0].images["front"]   # uint8[T, H, W, 3]
    episodes[0].progress          # float32[T]: the task's ground-truth progress of each frame

Tasks with a script: ``SCRIPTS.names()`` (panda_reach, panda_push).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch

from robot_rl.envs.sim_env import SimVecEnv
from robot_rl.registry import Registry
from robot_rl_sim.constants import panda

QUALITIES = ("expert", "noisy", "regressing", "random")


@dataclass
class Episode:
    """One rendered episode of T frames."""

    task: str
    quality: str
    """One of :data:`QUALITIES`."""
    images: dict[str, np.ndarray]
    """camera -> uint8[T, H, W, 3]"""
    progress: np.ndarray
    """float32[T]: the task's ground-truth progress in [0, 1]."""
    success: np.ndarray
    """bool[T]"""
    qpos: np.ndarray
    """float32[T, nq]"""
    mocap_pos: np.ndarray
    """float32[T, nmocap, 3]"""
    tip: np.ndarray
    """float32[T, 3]: gripper tip (``ee_site``) in world coordinates."""


@dataclass
class Plan:
    """A scripted task: the tip target and the object placement as functions of the phase."""

    tip: Callable[[float], np.ndarray]
    """s -> float[3] tip position in world coordinates."""
    place_objects: Callable[[float, np.ndarray], None] = field(default=lambda s, qpos: None)
    """(s, qpos float[nq]) -> None: write the objects' pose at phase s into qpos."""
    point_down: bool = False
    """Also keep the gripper pointing straight down."""


ScriptFn = Callable[["ArmIK", np.ndarray, np.ndarray, SimVecEnv], Plan]
"""(ik, qpos0 float[nq], mocap_pos float[nmocap, 3], env) -> Plan for one world."""

SCRIPTS: Registry[ScriptFn] = Registry("episode script")
"""Task name -> script."""


class ArmIK:
    """Damped-least-squares inverse kinematics of the Panda's tip (``ee_site``) on the CPU."""

    def __init__(self, model: mujoco.MjModel, damping: float = 0.05, max_step: float = 0.2) -> None:
        self.model, self.data = model, mujoco.MjData(model)
        self.damping = damping
        self.max_step = max_step
        """Largest change of any joint per iteration (radians): keeps far targets from
        throwing the arm into its joint limits."""
        self.site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, panda.EE_SITE)
        joints = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in panda.ARM_JOINTS]
        self.qadr = model.jnt_qposadr[joints]
        self.dadr = model.jnt_dofadr[joints]
        self.low, self.high = model.jnt_range[joints].T
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def tip(self, qpos: np.ndarray) -> np.ndarray:
        """float[3] tip position for qpos float[nq]."""
        self.data.qpos[:] = qpos
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site].copy()

    def solve(self, qpos: np.ndarray, target: np.ndarray, point_down: bool = False, iters: int = 40,
              tol: float = 1e-3) -> np.ndarray:
        """qpos float[nq] with the arm joints moved (from ``qpos``, within limits) so that the tip
        is at ``target`` float[3]; other coordinates are kept."""
        model, data = self.model, self.data
        data.qpos[:] = qpos
        q = qpos[self.qadr].astype(np.float64)
        for _ in range(iters):
            data.qpos[self.qadr] = q
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)
            error = target - data.site_xpos[self.site]
            mujoco.mj_jacSite(model, data, self._jacp, self._jacr, self.site)
            jac = self._jacp[:, self.dadr]
            if point_down:
                axis = data.site_xmat[self.site].reshape(3, 3)[:, 2]
                error = np.concatenate([error, panda.IK_TILT_WEIGHT * np.cross(axis, [0.0, 0.0, -1.0])])
                jac = np.vstack([jac, panda.IK_TILT_WEIGHT * self._jacr[:, self.dadr]])
            if np.linalg.norm(error) < tol:
                break
            step = jac.T @ np.linalg.solve(jac @ jac.T + self.damping**2 * np.eye(len(error)), error)
            step *= min(1.0, self.max_step / max(np.abs(step).max(), 1e-12))
            q = np.clip(q + step, self.low, self.high)
        out = np.array(qpos, dtype=np.float64)
        out[self.qadr] = q
        return out


# -- phase schedules ---------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _smooth_noise(rng: np.random.Generator, steps: int, dims: int, cycles: float = 2.0) -> np.ndarray:
    """float[steps, dims] smooth zero-start noise of roughly unit amplitude: a few random low-frequency sines."""
    t = np.linspace(0.0, 1.0, steps)[:, None, None]
    freq = rng.uniform(0.3, cycles, size=(1, 3, dims))
    phase = rng.uniform(0.0, 2 * np.pi, size=(1, 3, dims))
    waves = np.sin(2 * np.pi * freq * t + phase).sum(axis=1) / np.sqrt(1.5)
    return waves - waves[:1]


def phase_schedule(quality: str, steps: int, rng: np.random.Generator) -> np.ndarray:
    """float[steps] phase s(t) in [0, 1] for an episode of ``quality`` (not used by ``random``)."""
    t = np.linspace(0.0, 1.0, steps)
    if quality == "expert":
        return _smoothstep(t / 0.8)
    if quality == "noisy":
        pace = np.exp(rng.normal(0.0, 0.6, steps))
        s = np.cumsum(pace) - pace[0]
        s = rng.uniform(0.7, 0.95) * _smoothstep(s / s[-1] / 0.85)
        return np.clip(s + 0.08 * _smooth_noise(rng, steps, 1, 3.0)[:, 0], 0.0, 1.0)
    if quality == "regressing":
        peak, t_peak, end = rng.uniform(0.5, 0.9), rng.uniform(0.4, 0.6), rng.uniform(0.0, 0.2)
        rise = peak * _smoothstep(t / t_peak)
        fall = peak + (end - peak) * _smoothstep((t - t_peak) / (0.95 - t_peak))
        return np.where(t <= t_peak, rise, fall)
    raise ValueError(f"unknown episode quality {quality!r}; qualities: {', '.join(QUALITIES)}")


# -- scripts -----------------------------------------------------------------------------------


@SCRIPTS.register("panda_reach")
def reach_script(ik: ArmIK, qpos0: np.ndarray, mocap: np.ndarray, env: SimVecEnv) -> Plan:
    """The tip moves on a straight line from its start to the target sphere."""
    start = ik.tip(qpos0)
    target = mocap[env.sim.layout.mocap_row("target")].astype(np.float64)
    return Plan(tip=lambda s: start + s * (target - start))


@SCRIPTS.register("panda_push")
def push_script(ik: ArmIK, qpos0: np.ndarray, mocap: np.ndarray, env: SimVecEnv) -> Plan:
    """Hover behind the cube (s < 0.3), lower the tip to the cube's mid-height (s < 0.45), then
    push: the cube slides straight onto the target with the tip just behind it."""
    start = ik.tip(qpos0)
    cube_q = env.sim.layout.qpos("cube_joint")
    cube0 = qpos0[cube_q].astype(np.float64)
    goal = mocap[env.sim.layout.mocap_row("target"), :2].astype(np.float64)
    path = goal - cube0[:2]
    direction = path / max(np.linalg.norm(path), 1e-6)
    behind = panda.CUBE_HALF + 0.015
    low = panda.TABLE_Z + 0.6 * panda.CUBE_HALF

    def cube_xy(s: float) -> np.ndarray:
        return cube0[:2] + path * np.clip((s - 0.45) / 0.55, 0.0, 1.0)

    def tip(s: float) -> np.ndarray:
        pre = np.append(cube0[:2] - behind * direction, low)
        hover = pre + np.array([0.0, 0.0, 0.1])
        if s < 0.3:
            return start + (s / 0.3) * (hover - start)
        if s < 0.45:
            return hover + ((s - 0.3) / 0.15) * (pre - hover)
        return np.append(cube_xy(s) - behind * direction, low)

    def place_objects(s: float, qpos: np.ndarray) -> None:
        qpos[cube_q.start:cube_q.start + 2] = cube_xy(s)

    return Plan(tip=tip, place_objects=place_objects, point_down=True)


# -- rendering ---------------------------------------------------------------------------------


def _trajectory(ik: ArmIK, plan: Plan, qpos0: np.ndarray, quality: str, steps: int,
                rng: np.random.Generator) -> np.ndarray:
    """float[steps, nq] states of one episode."""
    qpos = np.empty((steps, qpos0.shape[0]))
    if quality == "random":
        qpos[:] = qpos0
        offsets = 0.4 * _smooth_noise(rng, steps, len(ik.qadr))
        qpos[:, ik.qadr] = np.clip(qpos0[ik.qadr] + offsets, ik.low, ik.high)
        return qpos
    phases = phase_schedule(quality, steps, rng)
    q = np.array(qpos0, dtype=np.float64)
    for t, s in enumerate(phases):
        q = ik.solve(q, plan.tip(float(s)), plan.point_down)
        plan.place_objects(float(s), q)
        qpos[t] = q
    if quality == "noisy":
        noise = 0.06 * _smooth_noise(rng, steps, len(ik.qadr), 3.0)
        qpos[:, ik.qadr] = np.clip(qpos[:, ik.qadr] + noise, ik.low, ik.high)
    return qpos


def render_episodes(env: SimVecEnv, qualities: Sequence[str], num_steps: int = 40, seed: int = 0,
                    cameras: Sequence[str] | None = None, image_size: tuple[int, int] | None = None) -> list[Episode]:
    """Render one episode of ``num_steps`` frames per entry of ``qualities``, in batches of
    ``env.num_envs`` worlds; each batch starts from ``env.reset(seed + batch index)``, so starts
    and targets follow the task's own reset distribution. Cameras and size default to the
    env's ``image_cameras`` and ``image_size``. Needs the native backend (``env.sim.model``).
    The env's worlds are left in the last frame's state: reset it before stepping again."""
    task = env.task.name
    script = SCRIPTS.get(task)
    cameras = tuple(cameras or env.image_cameras or env.task.cameras[:1])
    height, width = image_size or env.image_size
    ik = ArmIK(env.sim.model)
    rng = np.random.default_rng(seed)
    unknown = sorted(set(qualities) - set(QUALITIES))
    if unknown:
        raise ValueError(f"unknown episode qualities {unknown}; qualities: {', '.join(QUALITIES)}")
    episodes: list[Episode] = []
    n = env.num_envs
    ids = torch.arange(n)
    for batch, first in enumerate(range(0, len(qualities), n)):
        kinds = list(qualities[first:first + n])
        env.reset(seed=seed + batch)
        qpos0 = env.sim.qpos.numpy().astype(np.float64)
        mocap = env.sim.mocap_pos.clone()
        paths = np.repeat(qpos0[:, None], num_steps, axis=1)  # worlds beyond len(kinds) stay still
        for i, kind in enumerate(kinds):
            plan = script(ik, qpos0[i], mocap[i].numpy(), env)
            paths[i] = _trajectory(ik, plan, qpos0[i], kind, num_steps, rng)
        frames = {c: np.empty((n, num_steps, height, width, 3), np.uint8) for c in cameras}
        progress = np.empty((n, num_steps), np.float32)
        success = np.empty((n, num_steps), bool)
        tips = np.empty((n, num_steps, 3), np.float32)
        qvel = torch.zeros(n, env.sim.layout.nv)
        for t in range(num_steps):
            env.sim.set_state(ids, torch.from_numpy(paths[:, t]).float(), qvel, mocap)
            for camera in cameras:
                frames[camera][:, t] = env.sim.render(camera, height, width, antialias=env.image_antialias).numpy()
            progress[:, t] = env.task.progress(env.sim).numpy()
            success[:, t] = env.task.success(env.sim).numpy()
            tips[:, t] = env.sim.sensor("ee_pos").numpy()
        for i, kind in enumerate(kinds):
            episodes.append(Episode(
                task=task, quality=kind, images={c: frames[c][i] for c in cameras}, progress=progress[i],
                success=success[i], qpos=paths[i].astype(np.float32),
                mocap_pos=np.repeat(mocap[i].numpy()[None], num_steps, axis=0), tip=tips[i],
            ))
    return episodes


def make_episodes(task: str, qualities: Sequence[str], num_steps: int = 40, seed: int = 0,
                  cameras: Sequence[str] = ("front",), image_size: tuple[int, int] = (64, 64),
                  num_envs: int = 8) -> list[Episode]:
    """Build a native env of ``task``, render :func:`render_episodes` with it, close it."""
    from robot_rl.envs import make

    env = make(task, num_envs=min(num_envs, max(1, len(qualities))), image_cameras=tuple(cameras),
               image_size=image_size, seed=seed)
    try:
        return render_episodes(env, qualities, num_steps, seed)
    finally:
        env.close()
