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

    def __init__(self, model: mujoco.MjModel, height: int, width: int) -> None:
        self.model = model
        self.height, self.width = height, width
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

    def render(self, camera: str, qpos: np.ndarray, mocap_pos: np.ndarray | None = None) -> np.ndarray:
        """Images uint8[n, H, W, 3] of worlds given by qpos float[n, nq] and mocap_pos float[n, nmocap, 3]."""
        camera_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if camera_id < 0:
            raise ValueError(f"no camera named {camera!r} in the model")
        self._camera.fixedcamid = camera_id
        self._context.make_current()
        n = qpos.shape[0]
        images = np.empty((n, self.height, self.width, 3), dtype=np.uint8)
        model, data = self.model, self._data
        for i in range(n):
            data.qpos[:] = qpos[i]
            if mocap_pos is not None and model.nmocap:
                data.mocap_pos[:] = mocap_pos[i]
            mujoco.mj_kinematics(model, data)
            mujoco.mj_camlight(model, data)
            mujoco.mjv_updateScene(model, data, self._option, None, self._camera,
                                   mujoco.mjtCatBit.mjCAT_ALL, self._scene)
            mujoco.mjr_render(self._viewport, self._scene, self._mjr)
            mujoco.mjr_readPixels(images[i], None, self._viewport, self._mjr)
        return np.ascontiguousarray(images[:, ::-1])  # OpenGL rows run bottom-up

    def close(self) -> None:
        self._mjr.free()
        self._context.free()


class RendererPool:
    """One :class:`SceneRenderer` per image size, created on first use."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self._model = model
        self._renderers: dict[tuple[int, int], SceneRenderer] = {}

    def render(self, camera: str, height: int, width: int, qpos: np.ndarray,
               mocap_pos: np.ndarray | None = None) -> np.ndarray:
        """uint8[n, H, W, 3]; see :meth:`SceneRenderer.render`."""
        key = (height, width)
        if key not in self._renderers:
            # Each renderer sizes the offscreen buffer of the model it holds, so give it a copy.
            self._renderers[key] = SceneRenderer(copy.copy(self._model), height, width)
        return self._renderers[key].render(camera, qpos, mocap_pos)

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
