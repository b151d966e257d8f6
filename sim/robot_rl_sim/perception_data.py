"""Labelled RGB-D frames of a cube task under domain randomisation, for training perception.

    source = FrameSource("panda_push", image_size=(128, 128), randomization=Randomization())
    states = source.collect_states(num=2000, seed=0)          # arm and cube poses from rollouts
    frames = source.render(states, seed=1)                     # Frames: rgb, depth, pixels, ...

States come from rollouts of the task in the simulator: the scripted pusher (expert, noisy and
failed pushes: the arm near, over and touching the cube) and random arm motion, plus, for
``panda_lift``, the cube placed between the fingers of a raised gripper. Each state is rendered
once with its own draw of the randomisation (Tobin et al. 2017, "Domain randomization for
transferring deep neural networks from simulation to the real world"): camera position,
orientation and field of view, light directions and strengths, colours of the table, cube, robot
and floor, distractor objects on the table, image noise and blur, depth noise and holes.
Labels are the true keypoints projected with the drawn camera, and whether each is visible
(its depth agrees with the rendered depth).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from robot_rl.perception import geometry
from robot_rl_sim.constants import panda
from robot_rl_sim.rendering import DepthRenderer, camera_extrinsics, camera_intrinsics

KEYPOINTS: dict[str, tuple[tuple[str, tuple[float, float, float]], ...]] = {
    # name, world offset from the marked surface point to the reported point
    "panda_push": (("cube", (0.0, 0.0, -panda.CUBE_HALF)), ("target", (0.0, 0.0, 0.0)), ("tip", (0.0, 0.0, 0.0))),
    "panda_lift": (("cube", (0.0, 0.0, -panda.CUBE_HALF)), ("tip", (0.0, 0.0, 0.0))),
}
"""Keypoints per task. "cube" is marked at the centre of the cube's upper face and reported at
its centre; "target" is the push target disc's centre; "tip" is the gripper's tool point
(between the fingertips; usually hidden by the fingers, so it is lifted poorly: a robot knows it
from its joints)."""

VISIBLE_TOLERANCE = 0.01
"""A keypoint is visible when the rendered depth at its pixel is within this of its own (m)."""


@dataclass(frozen=True)
class Randomization:
    """Ranges of the per-frame randomisation (each drawn uniformly in ±range unless noted)."""

    camera_position: float = 0.05
    """metres, per axis"""
    camera_rotation: float = 5.0
    """degrees, about a random axis"""
    fovy: float = 5.0
    """degrees"""
    light: float = 0.5
    """relative change of each light's strength; directions turn by up to 30° times this"""
    colors: float = 1.0
    """0: the model's colours; 1: table, floor, robot materials and distractors drawn anywhere in
    RGB, the cube drawn as a random saturated colour (its shape and depth have to carry it)"""
    distractors: int = 4
    """up to this many objects (spheres, cylinders, flat or tall boxes) on the table"""
    image_noise: float = 0.03
    """std of additive Gaussian noise on colour in [0, 1], drawn in [0, this]"""
    blur: float = 1.0
    """Gaussian blur sigma (pixels) drawn in [0, this]"""
    depth_noise: float = 0.005
    """std (m) of depth noise, drawn in [0, this], growing with distance squared (at 1 m)"""
    depth_holes: float = 0.05
    """fraction of depth pixels dropped to 0 (in small clusters), drawn in [0, this]"""

    @classmethod
    def none(cls) -> Randomization:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class View:
    """A fixed camera placement and colours, for held-out evaluation under an unseen view."""

    camera_position: tuple[float, float, float] | None = None
    camera_lookat: tuple[float, float, float] | None = None
    colors: dict[str, tuple[float, float, float]] | None = None
    """``cube``, ``table``, ``robot``, ``floor`` -> RGB in [0, 1]"""


@dataclass
class Frames:
    rgb: np.ndarray
    """uint8[n, H, W, 3]"""
    depth: np.ndarray
    """float32[n, H, W] metres, 0 = no reading"""
    cam_to_world: np.ndarray
    """float64[n, 4, 4] (OpenCV frame)"""
    pixels: np.ndarray
    """float32[n, K, 2] true keypoint pixels (u, v) of the marked surface points"""
    points: np.ndarray
    """float32[n, K, 3] true reported points (world)"""
    visible: np.ndarray
    """bool[n, K] in the image and not hidden"""
    intrinsics: np.ndarray
    """float64[n, 4] (fx, fy, cx, cy) of each frame (the field of view is randomised)"""


@dataclass
class States:
    qpos: np.ndarray
    mocap_pos: np.ndarray


class FrameSource:
    def __init__(self, task: str, image_size: tuple[int, int] = (128, 128), camera: str = "front",
                 randomization: Randomization | None = None, view: View | None = None) -> None:
        if task not in KEYPOINTS:
            raise ValueError(f"perception training data exists for {', '.join(KEYPOINTS)}, not {task!r}")
        from robot_rl.envs.task import TASKS
        from robot_rl_sim.mjcf import scene_path

        self.task, self.camera = task, camera
        self.height, self.width = image_size
        self.randomization = randomization or Randomization()
        self.view = view or View()
        self.keypoints = KEYPOINTS[task]
        spec = mujoco.MjSpec.from_file(str(scene_path(TASKS.get(task).scene)))
        self.num_distractors = max(self.randomization.distractors, 0)
        for i in range(self.num_distractors):
            spec.worldbody.add_geom(name=f"distractor{i}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.02, 0.02, 0.02],
                                    pos=[0.0, 0.0, -5.0], contype=0, conaffinity=0, rgba=[0.5, 0.5, 0.5, 1.0])
        self.model = spec.compile()
        self.base = copy.deepcopy(self.model)
        if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            raise ValueError(f"{task} has no camera named {camera!r}")
        self.renderer = DepthRenderer(self.model, self.height, self.width)
        self.data = mujoco.MjData(self.model)
        self._cam = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        self.nominal_intrinsics = camera_intrinsics(self.base, camera, self.height, self.width)
        """(fx, fy, cx, cy) of the model's camera, unrandomised."""
        nominal = mujoco.MjData(self.base)
        mujoco.mj_kinematics(self.base, nominal)
        mujoco.mj_camlight(self.base, nominal)  # camera poses are computed here, not in mj_kinematics
        self.nominal_pose = camera_extrinsics(self.base, nominal, camera)
        """float64[4, 4] camera-to-world pose of the model's camera (OpenCV frame), unrandomised."""
        self._cube_body = self.model.body("cube").id
        self._cube_geoms = [g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] == self._cube_body]
        self._target = self.model.body("target").mocapid[0]
        self._tip = self.model.site("ee_site").id
        self._table = [self.model.geom(n).id for n in ("table",)]
        robot_bodies = {b for b in range(self.model.nbody) if self._is_robot(b)}
        self._robot_materials = sorted({int(self.model.geom_matid[g]) for g in range(self.model.ngeom)
                                        if self.model.geom_bodyid[g] in robot_bodies and self.model.geom_matid[g] >= 0})
        self._robot_plain = [g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] in robot_bodies
                             and self.model.geom_matid[g] < 0]

    def _is_robot(self, body: int) -> bool:
        while body > 0:
            if self.model.body(body).name == "link0":
                return True
            body = self.model.body_parentid[body]
        return False

    def close(self) -> None:
        self.renderer.close()

    # -- states ---------------------------------------------------------------------------------

    def collect_states(self, num: int, seed: int, num_envs: int = 16) -> States:
        """``num`` simulator states of the task from rollouts with seed ``seed`` (see the module
        docstring); disjoint seeds give disjoint cube starts and targets."""
        from robot_rl.envs.make import make
        from robot_rl_sim.scripted import ScriptedPusher

        env = make(self.task, num_envs=num_envs, seed=seed)
        rng = np.random.default_rng(seed)
        qualities = ["expert", "noisy", "failed", "expert"] * (num_envs // 4 + 1)
        pusher = ScriptedPusher(env, qualities[:num_envs], seed=seed) if self.task == "panda_push" else None
        env.reset(seed=seed)
        qpos, mocap = [], []
        while sum(len(q) for q in qpos) < num:
            if pusher is not None:
                actions = pusher.act()
            else:
                actions = torch.as_tensor(rng.uniform(-1, 1, (num_envs, env.action_dim)), dtype=torch.float32)
            env.step(actions)
            pick = rng.random(num_envs) < 0.25
            if pick.any():
                qpos.append(env.sim.qpos[torch.as_tensor(pick)].cpu().numpy().astype(np.float64))
                mocap.append(env.sim.mocap_pos[torch.as_tensor(pick)].cpu().numpy().astype(np.float64))
        env.close()
        states = States(np.concatenate(qpos)[:num], np.concatenate(mocap)[:num])
        if self.task == "panda_lift":
            self._hold_cubes(states, rng)
        return states

    def _hold_cubes(self, states: States, rng: np.random.Generator) -> None:
        """Put the cube between the fingers of the raised tip in half the lift states."""
        model, data = self.model, self.data
        cube_adr = model.jnt_qposadr[model.body_jntadr[self._cube_body]]
        for i in np.nonzero(rng.random(len(states.qpos)) < 0.5)[0]:
            data.qpos[:] = states.qpos[i]
            mujoco.mj_kinematics(model, data)
            tip = data.site_xpos[self._tip].copy()
            if tip[2] < panda.TABLE_Z + 2 * panda.CUBE_HALF:
                continue
            states.qpos[i, cube_adr:cube_adr + 3] = tip + np.array([0.0, 0.0, -0.01])

    # -- rendering ------------------------------------------------------------------------------

    def render(self, states: States, seed: int, progress=None) -> Frames:
        """One randomised frame per state (``progress``: a callable told each frame's index)."""
        rng = np.random.default_rng(seed)
        n, k = len(states.qpos), len(self.keypoints)
        h, w = self.height, self.width
        out = Frames(np.empty((n, h, w, 3), np.uint8), np.empty((n, h, w), np.float32), np.empty((n, 4, 4)),
                     np.empty((n, k, 2), np.float32), np.empty((n, k, 3), np.float32), np.empty((n, k), bool),
                     np.empty((n, 4)))
        for i in range(n):
            self._randomize(rng)
            rgb, depth, pose = self.renderer.render_rgbd(self.camera, states.qpos[i:i + 1], states.mocap_pos[i:i + 1])
            intrinsics = camera_intrinsics(self.model, self.camera, h, w)
            marked, reported = self._keypoints(states.qpos[i], states.mocap_pos[i])
            pixels, z = geometry.project(torch.as_tensor(marked)[None], intrinsics, torch.as_tensor(pose))
            at = geometry.sample_depth(torch.as_tensor(depth), pixels, window=0)
            pixels, z, at = pixels[0].numpy(), z[0].numpy(), at[0].numpy()
            out.visible[i] = (z > 0) & np.isfinite(at) & (np.abs(at - z) < VISIBLE_TOLERANCE)
            out.rgb[i], out.depth[i] = self._corrupt(rgb[0], depth[0], rng)
            out.cam_to_world[i], out.pixels[i], out.points[i], out.intrinsics[i] = pose[0], pixels, reported, intrinsics
            if progress is not None:
                progress(i)
        return out

    def _keypoints(self, qpos: np.ndarray, mocap_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Marked surface points and reported points float64[K, 3] of one state."""
        data = self.data
        data.qpos[:] = qpos
        data.mocap_pos[:] = mocap_pos
        mujoco.mj_kinematics(self.model, data)
        marked, reported = [], []
        for name, offset in self.keypoints:
            if name == "cube":
                centre = data.xpos[self._cube_body]
                axes = data.xmat[self._cube_body].reshape(3, 3)
                up = np.argmax(np.abs(axes[2]))  # the body axis closest to world z
                top = centre + panda.CUBE_HALF * np.sign(axes[2, up]) * axes[:, up]
                marked.append(top)
                reported.append(centre)
                continue
            point = data.mocap_pos[self._target] if name == "target" else data.site_xpos[self._tip]
            marked.append(point - np.asarray(offset))
            reported.append(point.copy())
        return np.array(marked), np.array(reported)

    def _randomize(self, rng: np.random.Generator) -> None:
        model, base, r, view = self.model, self.base, self.randomization, self.view
        model.cam_pos[self._cam] = base.cam_pos[self._cam]
        model.cam_quat[self._cam] = base.cam_quat[self._cam]
        model.cam_fovy[self._cam] = base.cam_fovy[self._cam]
        if view.camera_position is not None:
            from robot_rl_sim.rendering import look_at

            look_at(model, self.camera, view.camera_position, view.camera_lookat or (0.5, 0.0, 0.0))
        model.cam_pos[self._cam] += rng.uniform(-r.camera_position, r.camera_position, 3)
        if r.camera_rotation > 0:
            axis = rng.normal(size=3)
            turn = np.empty(4)
            mujoco.mju_axisAngle2Quat(turn, axis / np.linalg.norm(axis),
                                      np.deg2rad(rng.uniform(-r.camera_rotation, r.camera_rotation)))
            quat = np.empty(4)
            mujoco.mju_mulQuat(quat, turn, model.cam_quat[self._cam].copy())
            model.cam_quat[self._cam] = quat
        model.cam_fovy[self._cam] = base.cam_fovy[self._cam] + rng.uniform(-r.fovy, r.fovy)
        # lights
        scale = 1.0 + rng.uniform(-r.light, r.light, (model.nlight, 1))
        model.light_diffuse[:] = np.clip(base.light_diffuse * scale, 0.0, 1.0)
        direction = base.light_dir + rng.uniform(-0.5, 0.5, base.light_dir.shape) * r.light
        model.light_dir[:] = direction / np.linalg.norm(direction, axis=1, keepdims=True)
        for part in ("ambient", "diffuse"):
            value = getattr(base.vis.headlight, part) * (1 + rng.uniform(-r.light, r.light))
            getattr(model.vis.headlight, part)[:] = np.clip(value, 0, 1)
        # colours
        model.geom_rgba[:] = base.geom_rgba
        model.mat_rgba[:] = base.mat_rgba
        model.geom_matid[:] = base.geom_matid
        c = r.colors
        if c > 0:
            def jitter(rgb):
                return np.clip((1 - c) * np.asarray(rgb[:3]) + c * rng.uniform(0, 1, 3), 0, 1)
            for g in self._table:
                mat = base.geom_matid[g]
                if mat >= 0:
                    model.mat_rgba[mat, :3] = jitter(base.mat_rgba[mat])
                else:
                    model.geom_rgba[g, :3] = jitter(base.geom_rgba[g])
            for mat in self._robot_materials:
                model.mat_rgba[mat, :3] = jitter(base.mat_rgba[mat])
            for g in self._robot_plain:
                model.geom_rgba[g, :3] = jitter(base.geom_rgba[g])
            cube_colour = _saturated(rng) if rng.random() < c else base.geom_rgba[self._cube_geoms[0], :3]
            for g in self._cube_geoms:
                model.geom_rgba[g, :3] = cube_colour
                model.geom_matid[g] = -1
        if view.colors:
            for part, rgb in view.colors.items():
                self._set_colour(part, np.asarray(rgb, dtype=float))
        # distractors: on the table, away from nothing in particular (they may hide the cube)
        count = rng.integers(0, self.num_distractors + 1) if self.num_distractors else 0
        for i in range(self.num_distractors):
            g = model.geom(f"distractor{i}").id
            if i >= count:
                model.geom_pos[g] = (0.0, 0.0, -5.0)
                continue
            kind = rng.integers(0, 4)
            if kind == 0:
                model.geom_type[g], size = mujoco.mjtGeom.mjGEOM_SPHERE, [rng.uniform(0.01, 0.04)] * 3
            elif kind == 1:
                model.geom_type[g], size = mujoco.mjtGeom.mjGEOM_CYLINDER, [rng.uniform(0.01, 0.03),
                                                                            rng.uniform(0.02, 0.06), 0]
            elif kind == 2:  # flat box
                size = [rng.uniform(0.03, 0.08), rng.uniform(0.03, 0.08), rng.uniform(0.003, 0.01)]
                model.geom_type[g] = mujoco.mjtGeom.mjGEOM_BOX
            else:  # tall box, unlike the cube
                size = [rng.uniform(0.01, 0.02), rng.uniform(0.01, 0.02), rng.uniform(0.04, 0.08)]
                model.geom_type[g] = mujoco.mjtGeom.mjGEOM_BOX
            model.geom_size[g] = size
            model.geom_rbound[g] = float(np.linalg.norm(size)) + 0.05
            half_height = size[2] if kind != 0 else size[0]
            model.geom_pos[g] = (rng.uniform(0.25, 0.8), rng.uniform(-0.45, 0.45), panda.TABLE_Z + half_height)
            model.geom_rgba[g] = (*rng.uniform(0, 1, 3), 1.0)

    def _set_colour(self, part: str, rgb: np.ndarray) -> None:
        model = self.model
        if part == "cube":
            for g in self._cube_geoms:
                model.geom_rgba[g, :3], model.geom_matid[g] = rgb, -1
        elif part in ("table", "floor"):
            for g in self._table:
                if model.geom_matid[g] >= 0:
                    model.mat_rgba[model.geom_matid[g], :3] = rgb
                else:
                    model.geom_rgba[g, :3] = rgb
        elif part == "robot":
            for mat in self._robot_materials:
                model.mat_rgba[mat, :3] = rgb
            for g in self._robot_plain:
                model.geom_rgba[g, :3] = rgb
        else:
            raise ValueError(f"colour for {part!r}: choose cube, table, floor or robot")

    def _corrupt(self, rgb: np.ndarray, depth: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        r = self.randomization
        image = rgb.astype(np.float32) / 255.0
        if r.blur > 0:
            image = _blur(image, rng.uniform(0, r.blur))
        if r.image_noise > 0:
            image = image + rng.normal(0, rng.uniform(0, r.image_noise), image.shape)
        depth = depth.copy()
        if r.depth_noise > 0:
            depth += rng.normal(0, 1, depth.shape).astype(np.float32) * rng.uniform(0, r.depth_noise) * depth ** 2
        if r.depth_holes > 0:
            holes = rng.random((self.height // 4 + 1, self.width // 4 + 1)) < rng.uniform(0, r.depth_holes)
            holes = np.kron(holes, np.ones((4, 4), bool))[:self.height, :self.width]
            depth[holes] = 0.0
        return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), depth.astype(np.float32)


def _saturated(rng: np.random.Generator) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.5, 1), rng.uniform(0.4, 1)))


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return image
    radius = int(math.ceil(2 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(image, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    image = sum(kernel[j] * padded[j:j + image.shape[0]] for j in range(len(x)))
    padded = np.pad(image, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(kernel[j] * padded[:, j:j + image.shape[1]] for j in range(len(x)))
