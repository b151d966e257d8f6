"""Batched offscreen rendering of MuJoCo worlds, for observations and videos.

One OpenGL context per image size, an offscreen buffer exactly the size of the image, and
shadows, reflections and the skybox off: on a software renderer that is the difference
between tens and hundreds of frames per second.
"""

from __future__ import annotations

import copy
import importlib
import os

import mujoco
import numpy as np

_GL_BACKENDS = ("egl", "osmesa")
_INSTALL_HINT = (
    "install an offscreen OpenGL: EGL (Debian/Ubuntu: apt-get install libegl1 libgl1) or "
    "OSMesa (apt-get install libosmesa6), then set MUJOCO_GL=egl or MUJOCO_GL=osmesa"
)


class RendererUnavailableError(RuntimeError):
    """No offscreen OpenGL could be created; the message names what was tried."""


def _gl_context(width: int, height: int):
    requested = os.environ.get("MUJOCO_GL", "egl").lower()
    order = [requested] + [b for b in _GL_BACKENDS if b != requested]
    tried = []
    for name in order:
        if name not in _GL_BACKENDS:
            tried.append(f"{name}: not an offscreen renderer (use egl or osmesa)")
            continue
        try:
            context = importlib.import_module(f"mujoco.{name}").GLContext(width, height)
            context.make_current()
            return context
        except Exception as error:  # each GL library fails in its own way
            tried.append(f"{name}: {type(error).__name__}: {error}")
    raise RendererUnavailableError("no offscreen renderer works (tried " + "; ".join(tried) + "); " + _INSTALL_HINT)


class SceneRenderer:
    """Renders images of one size from any camera of a model, one world at a time."""

    def __init__(self, model: mujoco.MjModel, height: int, width: int, antialias: bool = True) -> None:
        """``antialias``: multisample as the model's ``offsamples`` says; False renders small
        images faster (panda_reach at 64x64: ~2.6x) with jagged edges."""
        self.model = model
        self.height, self.width = height, width
        if not antialias:
            model.vis.quality.offsamples = 0
        # Size the offscreen buffer to the image: anything larger costs fill rate for nothing.
        model.vis.global_.offwidth = width
        model.vis.global_.offheight = height
        self._context = _gl_context(width, height)
        self._mjr = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._mjr)
        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, 2 * model.ngeom))
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX):
            self._scene.flags[flag] = 0
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._viewport = mujoco.MjrRect(0, 0, width, height)
        self._data = mujoco.MjData(model)

    def draw(self, camera: str, qpos: np.ndarray, mocap_pos: np.ndarray | None = None):
        """Draw world after world (qpos float[n, nq], mocap_pos float[n, nmocap, 3]) into the
        offscreen buffer of ``camera``, yielding each world's index while its frame is there."""
        self._camera.fixedcamid = _camera_id(self.model, camera)
        self._context.make_current()
        model, data = self.model, self._data
        for i in range(qpos.shape[0]):
            data.qpos[:] = qpos[i]
            if mocap_pos is not None and model.nmocap:
                data.mocap_pos[:] = mocap_pos[i]
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)  # cameras and lights that track a centre of mass need it
            mujoco.mj_camlight(model, data)
            mujoco.mjv_updateScene(model, data, self._option, None, self._camera,
                                   mujoco.mjtCatBit.mjCAT_ALL, self._scene)
            mujoco.mjr_render(self._viewport, self._scene, self._mjr)
            yield i

    def render(self, camera: str, qpos: np.ndarray, mocap_pos: np.ndarray | None = None) -> np.ndarray:
        """Images uint8[n, H, W, 3] of worlds given by qpos float[n, nq] and mocap_pos float[n, nmocap, 3]."""
        images = np.empty((qpos.shape[0], self.height, self.width, 3), dtype=np.uint8)
        for i in self.draw(camera, qpos, mocap_pos):
            mujoco.mjr_readPixels(images[i], None, self._viewport, self._mjr)
        return np.ascontiguousarray(images[:, ::-1])  # OpenGL rows run bottom-up

    def close(self) -> None:
        # Freeing an MjrContext deletes GL objects of whichever context is current, and another
        # renderer's may be: make this one current first.
        self._context.make_current()
        self._mjr.free()
        self._context.free()


class RendererPool:
    """One :class:`SceneRenderer` per image size and anti-aliasing (and one
    :class:`DepthRenderer` per size for RGB-D), created on first use."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self._model = model
        self._renderers: dict[tuple, SceneRenderer] = {}

    def render(self, camera: str, height: int, width: int, qpos: np.ndarray,
               mocap_pos: np.ndarray | None = None, antialias: bool = True) -> np.ndarray:
        """uint8[n, H, W, 3]; see :meth:`SceneRenderer.render`."""
        key = (height, width, antialias)
        if key not in self._renderers:
            # Each renderer sizes the offscreen buffer of the model it holds, so give it a copy.
            self._renderers[key] = SceneRenderer(copy.copy(self._model), height, width, antialias)
        return self._renderers[key].render(camera, qpos, mocap_pos)

    def render_rgbd(self, camera: str, height: int, width: int, qpos: np.ndarray, mocap_pos: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float, float]]:
        """rgb uint8[n, H, W, 3], depth float32[n, H, W] (metres), cam_to_world float64[n, 4, 4]
        and intrinsics (fx, fy, cx, cy); see :meth:`DepthRenderer.render_rgbd`."""
        key = ("depth", height, width)
        if key not in self._renderers:
            self._renderers[key] = DepthRenderer(copy.copy(self._model), height, width)
        renderer = self._renderers[key]
        return (*renderer.render_rgbd(camera, qpos, mocap_pos), renderer.intrinsics(camera))

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()


# -- depth and camera geometry (for lifting image keypoints to 3D) -----------------------------


def depth_to_metres(buffer: np.ndarray, model: mujoco.MjModel) -> np.ndarray:
    """OpenGL depth-buffer values float32[..., H, W] in [0, 1] -> distance along the camera's
    viewing axis in metres (z-depth, what open3d and OpenCV call depth). MuJoCo sets the
    clip planes to ``vis.map.znear/zfar`` times the model's extent."""
    extent = model.stat.extent
    near, far = model.vis.map.znear * extent, model.vis.map.zfar * extent
    return (near / (1.0 - buffer * (1.0 - near / far))).astype(np.float32)


def camera_intrinsics(model: mujoco.MjModel, camera: str, height: int, width: int) -> tuple[float, float, float, float]:
    """Pinhole intrinsics (fx, fy, cx, cy) in pixels of ``camera`` rendered at ``height`` x ``width``.

    MuJoCo's ``fovy`` is the vertical field of view and pixels are square, so
    fx = fy = (H / 2) / tan(fovy / 2). The principal point is the image centre in pixel-index
    coordinates (pixel (0, 0) is centred at 0), i.e. ((W - 1) / 2, (H - 1) / 2), the convention
    of open3d's ``PinholeCameraIntrinsic``.
    """
    cam = _camera_id(model, camera)
    if model.cam_projection[cam] != mujoco.mjtProjection.mjPROJ_PERSPECTIVE:
        raise ValueError(f"camera {camera!r} is orthographic; only perspective cameras have pinhole intrinsics")
    if np.any(model.cam_sensorsize[cam] > 0):
        raise ValueError(f"camera {camera!r} is defined by sensorsize/focal; only fovy cameras are supported")
    from robot_rl.perception.geometry import intrinsics_for

    return intrinsics_for(float(model.cam_fovy[cam]), height, width)


def camera_extrinsics(model: mujoco.MjModel, data: mujoco.MjData, camera: str) -> np.ndarray:
    """float64[4, 4] camera-to-world pose of ``camera`` in ``data`` (after kinematics), in the
    OpenCV/open3d camera convention: x right, y down, z along the viewing direction.

    MuJoCo cameras look along their -z axis with y up, so the MuJoCo frame's y and z columns
    are negated. Invert the result (``np.linalg.inv``) for open3d's world-to-camera ``extrinsic``.
    """
    cam = _camera_id(model, camera)
    pose = np.eye(4)
    pose[:3, :3] = data.cam_xmat[cam].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
    pose[:3, 3] = data.cam_xpos[cam]
    return pose


def _camera_id(model: mujoco.MjModel, camera: str) -> int:
    camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if camera_id < 0:
        raise ValueError(f"no camera named {camera!r} in the model")
    return camera_id


class DepthRenderer(SceneRenderer):
    """A :class:`SceneRenderer` that also reads the depth buffer: RGB-D images plus the camera
    intrinsics and per-world extrinsics needed to lift pixels to world coordinates.

    It renders without multisampling: resolving a multisampled depth buffer keeps one sample
    per pixel, 3/8 of a pixel off its centre, which shifts depth on slanted surfaces. Its
    colour images are therefore not anti-aliased. Give it its own copy of the model.
    """

    def __init__(self, model: mujoco.MjModel, height: int, width: int) -> None:
        super().__init__(model, height, width, antialias=False)

    def render_rgbd(self, camera: str, qpos: np.ndarray, mocap_pos: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Worlds given by qpos float[n, nq] and mocap_pos float[n, nmocap, 3] ->
        rgb uint8[n, H, W, 3], depth float32[n, H, W] (metres, z-depth; 0 where nothing is
        within the far clipping plane, as a depth camera reports no return) and camera-to-world
        poses float64[n, 4, 4] (see :func:`camera_extrinsics`)."""
        n = qpos.shape[0]
        images = np.empty((n, self.height, self.width, 3), dtype=np.uint8)
        buffers = np.empty((n, self.height, self.width), dtype=np.float32)
        poses = np.empty((n, 4, 4))
        for i in self.draw(camera, qpos, mocap_pos):
            mujoco.mjr_readPixels(images[i], buffers[i], self._viewport, self._mjr)
            poses[i] = camera_extrinsics(self.model, self._data, camera)
        rows = slice(None, None, -1)  # OpenGL rows run bottom-up
        buffers = np.ascontiguousarray(buffers[:, rows])
        depth = depth_to_metres(buffers, self.model)
        depth[buffers >= 1.0] = 0.0  # nothing there (the far plane): no reading, as a depth camera reports
        return np.ascontiguousarray(images[:, rows]), depth, poses

    def intrinsics(self, camera: str) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of ``camera`` at this renderer's image size."""
        return camera_intrinsics(self.model, camera, self.height, self.width)


def look_at(model: mujoco.MjModel, camera: str, position, target) -> None:
    """Move a fixed camera of the world body to ``position`` looking at ``target`` (metres,
    world frame), keeping the image upright (MuJoCo cameras look along their -z axis)."""
    cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if cid < 0:
        raise ValueError(f"no camera named {camera!r} in the model")
    position, target = np.asarray(position, float), np.asarray(target, float)
    back = position - target
    if np.linalg.norm(back) < 1e-9:
        raise ValueError(f"camera {camera!r}: position and look-at point coincide")
    z = back / np.linalg.norm(back)
    x = np.cross([0.0, 0.0, 1.0], z)
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-9 else np.array([1.0, 0.0, 0.0])
    y = np.cross(z, x)
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.stack([x, y, z], axis=1).reshape(-1))
    model.cam_pos[cid] = position
    model.cam_quat[cid] = quat


def recolor(model: mujoco.MjModel, colors: dict) -> None:
    """Set the RGBA of named geoms (materials are detached so the colour shows)."""
    for name, rgba in colors.items():
        gid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)
        if gid < 0:
            raise ValueError(f"no geom named {name!r} in the model")
        model.geom_rgba[gid] = rgba
        model.geom_matid[gid] = -1
