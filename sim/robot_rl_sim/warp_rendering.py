"""Batched rendering with MuJoCo Warp's ray tracer: all worlds of a batch in one kernel launch,
on a GPU or on Warp's CPU device (one thread).

Compared with :mod:`robot_rl_sim.rendering` (OpenGL through EGL, one world after another) on
the Panda scenes (``tests/sim/test_render_parity.py``): the same camera, intrinsics and image
orientation. Colours differ by about 6 levels of 255 on average (lighting is computed
differently: the table comes out a little brighter under the top light), edges and texture
filtering by more in under 0.1% of pixels; depth agrees to ~1e-5 m (median) where both see a
surface. Semi-transparent geoms (the targets) come out opaque. Anti-aliasing is supersampling:
``sqrt(offsamples)`` rays per pixel along each axis (2 x 2 for MuJoCo's default of 4), so it
costs that many renders where OpenGL's multisampling costs much less.

Speed against EGL: ``benchmarks/render_backends.py``; the README's Performance section has the
numbers and :mod:`robot_rl_sim.mujoco_warp` says which renderer that backend uses and why.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mujoco
import mujoco_warp as mjw
import numpy as np
import torch
import warp as wp

# Keep Warp's warnings, drop its per-module compile messages (hundreds of lines on first use);
# Warp >= 1.19 replaced ``config.quiet`` with this log level.
wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)
wp.init()

_MIN_NCONMAX = 8  # rendering never collides; put_data only needs room for the initial contacts


@wp.kernel
def _unpack_rgb(packed: wp.array2d(dtype=wp.uint32), adr: int, width: int, rgb: wp.array4d(dtype=wp.uint8)):
    """MuJoCo Warp's pixels (0xAARRGGBB, rows top-down) -> uint8[n, H, W, 3]."""
    world, pixel = wp.tid()
    value = packed[world, adr + pixel]
    y = pixel // width
    x = pixel - y * width
    rgb[world, y, x, 0] = wp.uint8((value >> wp.uint32(16)) & wp.uint32(255))
    rgb[world, y, x, 1] = wp.uint8((value >> wp.uint32(8)) & wp.uint32(255))
    rgb[world, y, x, 2] = wp.uint8(value & wp.uint32(255))


@dataclass
class _Batch:
    """Render state for up to ``nworld`` worlds of one camera."""

    data: mjw.Data
    context: mjw.RenderContext
    rgb: wp.array
    """uint8[nworld, H, W, 3]"""
    warm: bool = False
    """Ran once: kernels are compiled, so the next call can capture them."""
    graph: wp.Graph | None = None
    """kinematics + render + unpack, captured on the second call."""


class WarpRenderer:
    """Renders images of one size from any camera of a model, a batch of worlds at a time."""

    def __init__(self, model: mujoco.MjModel, height: int, width: int, antialias: bool = True,
                 device: str | torch.device = "cpu", depth: bool = False, max_worlds: int | None = None) -> None:
        """``antialias``: ``sqrt(model.vis.quality.offsamples)`` rays per pixel along each axis
        (else one). ``depth``: also trace depth, for :meth:`render_rgbd`. ``max_worlds``: the
        largest batch expected (the backend's N), so batch buffers never exceed it.

        A batch of ``n`` worlds is traced in buffers sized to the next power of two (at most
        ``max_worlds``), created on first use, so resetting a few worlds renders a few worlds
        instead of all of them."""
        self.model = model
        self.height, self.width = height, width
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self._wp_device = wp.get_device(str(self.device))
        self._samples = max(1, round(math.sqrt(model.vis.quality.offsamples))) if antialias else 1
        self._depth = depth
        self._max_worlds = max_worlds
        self._host_data = mujoco.MjData(model)
        mujoco.mj_forward(model, self._host_data)
        with wp.ScopedDevice(self._wp_device):
            self._m = mjw.put_model(model)
        self._batches: dict[tuple[str, int], _Batch] = {}
        self._datas: dict[int, mjw.Data] = {}

    def render(self, camera: str, qpos: torch.Tensor | np.ndarray,
               mocap_pos: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """Images uint8[n, H, W, 3] (on this renderer's device) of worlds given by
        qpos float[n, nq] and mocap_pos float[n, nmocap, 3]."""
        batch, n = self._trace(camera, qpos, mocap_pos)
        return wp.to_torch(batch.rgb, requires_grad=False)[:n].clone()

    def render_rgbd(self, camera: str, qpos: torch.Tensor | np.ndarray,
                    mocap_pos: torch.Tensor | np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """rgb uint8[n, H, W, 3] and depth float32[n, H, W]: metres along the camera's viewing
        axis (z-depth, as :func:`robot_rl_sim.rendering.depth_to_metres`), 0 where the ray
        hits nothing (no reading, as the EGL renderer and depth cameras report). Needs ``depth=True``."""
        if not self._depth:
            raise ValueError("this WarpRenderer was created without depth=True")
        batch, n = self._trace(camera, qpos, mocap_pos)
        rgb = wp.to_torch(batch.rgb, requires_grad=False)[:n].clone()
        depth = wp.to_torch(batch.context.depth_data, requires_grad=False)[:n].reshape(n, self.height, self.width)
        return rgb, torch.where(depth > 0, depth, torch.zeros_like(depth))

    def _trace(self, camera: str, qpos, mocap_pos) -> tuple[_Batch, int]:
        qpos = torch.as_tensor(qpos)
        n = qpos.shape[0]
        batch = self._batch(camera, n)
        with on_device(self._wp_device):
            data = batch.data
            wp.to_torch(data.qpos, requires_grad=False)[:n] = qpos.to(self.device, torch.float32)
            if mocap_pos is not None and self.model.nmocap:
                mocap = torch.as_tensor(mocap_pos).to(self.device, torch.float32).reshape(n, -1, 3)
                wp.to_torch(data.mocap_pos, requires_grad=False)[:n] = mocap
            if batch.graph is None and batch.warm:
                with wp.ScopedCapture(device=self._wp_device) as capture:
                    self._launch(batch)
                batch.graph = capture.graph
            if batch.graph is None:
                self._launch(batch)
                batch.warm = True
            else:
                wp.capture_launch(batch.graph)
        return batch, n

    def _launch(self, batch: _Batch) -> None:
        m, d, rc = self._m, batch.data, batch.context
        mjw.kinematics(m, d)
        mjw.com_pos(m, d)  # cameras and lights that track a centre of mass need it
        mjw.camlight(m, d)
        mjw.refit_bvh(m, d, rc)
        mjw.render(m, d, rc)
        wp.launch(_unpack_rgb, dim=(d.nworld, self.height * self.width),
                  inputs=[rc.rgb_data, 0, self.width], outputs=[batch.rgb])

    def _batch(self, camera: str, n: int) -> _Batch:
        size = 1 << max(0, n - 1).bit_length()
        if self._max_worlds is not None:
            size = max(n, min(size, self._max_worlds))
        key = (camera, size)
        if key not in self._batches:
            if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
                raise ValueError(f"no camera named {camera!r} in the model")
            with wp.ScopedDevice(self._wp_device):
                if size not in self._datas:
                    nconmax = max(_MIN_NCONMAX, self._host_data.ncon)
                    self._datas[size] = mjw.put_data(self.model, self._host_data, nworld=size, nconmax=nconmax,
                                                     njmax=max(nconmax, self._host_data.nefc))
                context = mjw.create_render_context(
                    self.model, nworld=size, cam_res=(self.width, self.height), render_rgb=True,
                    render_depth=self._depth, render_seg=False, cam_active=[camera],
                    samples_per_pixel=self._samples)
                rgb = wp.zeros((size, self.height, self.width, 3), dtype=wp.uint8)
            self._batches[key] = _Batch(self._datas[size], context, rgb)
        return self._batches[key]

    def close(self) -> None:
        self._batches.clear()
        self._datas.clear()


_TORCH_STREAMS: dict[int, wp.Stream] = {}


@contextmanager
def on_device(device: wp.Device) -> Iterator[None]:
    """Run Warp work on ``device``, ordered after the torch work queued so far (it wrote the
    inputs) and before any torch work queued afterwards (it reads the outputs)."""
    with wp.ScopedDevice(device):
        if not device.is_cuda:
            yield
            return
        stream = torch.cuda.current_stream(device.ordinal)
        torch_stream = _TORCH_STREAMS.get(stream.cuda_stream)
        if torch_stream is None:
            torch_stream = _TORCH_STREAMS[stream.cuda_stream] = wp.stream_from_torch(stream)
        warp_stream = device.stream
        warp_stream.wait_stream(torch_stream)
        yield
        torch_stream.wait_stream(warp_stream)
