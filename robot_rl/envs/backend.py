"""What a physics backend offers the batched environment, independent of the engine.

A backend steps N copies of one model. Tasks read its state through the tensors below and
look names up in its :class:`Layout`; they never touch the engine itself, so the same task
code runs on native MuJoCo, MuJoCo Warp and other engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from robot_rl.registry import Registry


@dataclass(frozen=True)
class Layout:
    """Where named things live in the state arrays of one model."""

    nq: int
    nv: int
    nu: int
    nmocap: int
    nsensordata: int
    timestep: float
    """Physics step in seconds."""
    joint_qpos: dict[str, slice]
    joint_qvel: dict[str, slice]
    sensors: dict[str, slice]
    bodies: dict[str, int]
    mocap: dict[str, int]
    """Mocap body name -> row in ``mocap_pos``/``mocap_quat``."""
    actuators: dict[str, int]
    ctrl_low: tuple[float, ...]
    ctrl_high: tuple[float, ...]
    cameras: tuple[str, ...]

    def qpos(self, joint: str) -> slice:
        return _lookup(self.joint_qpos, joint, "joint")

    def qvel(self, joint: str) -> slice:
        return _lookup(self.joint_qvel, joint, "joint")

    def sensor(self, name: str) -> slice:
        return _lookup(self.sensors, name, "sensor")

    def body(self, name: str) -> int:
        return _lookup(self.bodies, name, "body")

    def mocap_row(self, body: str) -> int:
        return _lookup(self.mocap, body, "mocap body")

    def actuator(self, name: str) -> int:
        return _lookup(self.actuators, name, "actuator")


def _lookup(table: dict, name: str, kind: str):
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"the model has no {kind} named {name!r}; it has: {', '.join(table)}") from None


@dataclass(frozen=True)
class RGBD:
    """Colour and depth images of one camera in n worlds, with the camera geometry that lifts
    their pixels to world points (:func:`robot_rl.perception.geometry.lift_pixels`)."""

    rgb: torch.Tensor
    """uint8[n, H, W, 3]"""
    depth: torch.Tensor
    """float32[n, H, W]: distance along the viewing axis in metres (z-depth)."""
    cam_to_world: torch.Tensor
    """float64[n, 4, 4]: camera-to-world poses, OpenCV frame (x right, y down, z forward)."""
    intrinsics: tuple[float, float, float, float]
    """(fx, fy, cx, cy) in pixels at (H, W), pixel (0, 0) centred at (0, 0)."""


class Backend(Protocol):
    """N worlds of one model. All tensors live on ``device``; state tensors are float32 and
    are refreshed after every ``step`` and ``set_state``.

    Depth is optional: backends that render it also implement :class:`DepthBackend`.

    Sensor values are computed at the start of the last physics substep of a control step
    (MuJoCo evaluates sensors before integrating), so they lag the state by one substep;
    after ``set_state`` they describe the new state exactly.
    """

    num_envs: int
    device: torch.device
    layout: Layout
    qpos: torch.Tensor
    """float32[N, nq]"""
    qvel: torch.Tensor
    """float32[N, nv]"""
    sensordata: torch.Tensor
    """float32[N, nsensordata]"""
    mocap_pos: torch.Tensor
    """float32[N, nmocap, 3]"""

    def sensor(self, name: str) -> torch.Tensor:
        """float32[N, dim] values of the named sensor."""
        ...

    def step(self, ctrl: torch.Tensor, substeps: int) -> None:
        """Hold ``ctrl`` float32[N, nu] for ``substeps`` physics steps, in one call."""
        ...

    def set_state(
        self,
        env_ids: torch.Tensor,
        qpos: torch.Tensor,
        qvel: torch.Tensor,
        mocap_pos: torch.Tensor | None = None,
    ) -> None:
        """Put worlds ``env_ids`` int64[n] into a new state: qpos float32[n, nq],
        qvel float32[n, nv], mocap_pos float32[n, nmocap, 3] (kept when None)."""
        ...

    def apply_wrench(self, body: str, wrench: torch.Tensor) -> None:
        """Apply force and torque float32[N, 6] (world frame, at the body's centre of mass)
        to ``body`` in every world until changed; zeros remove it."""
        ...

    def set_dynamics(
        self,
        env_ids: torch.Tensor,
        mass_scale: torch.Tensor,
        friction_scale: torch.Tensor,
        gain_scale: torch.Tensor,
        bodies: tuple[str, ...] = (),
    ) -> None:
        """Scale, per world, the masses of ``bodies`` (all bodies when empty), every geom's
        sliding friction and every position actuator's gain, relative to the model file.
        Each scale is float32[n] for worlds ``env_ids`` int64[n]."""
        ...

    def render(
        self, camera: str, height: int, width: int, env_ids: torch.Tensor | None = None, antialias: bool = True
    ) -> torch.Tensor:
        """Images uint8[n, H, W, 3] of ``camera`` in worlds ``env_ids`` (all when None);
        ``antialias=False`` may render faster with jagged edges."""
        ...

    def close(self) -> None: ...


class DepthBackend(Backend, Protocol):
    """A :class:`Backend` that also renders depth (optional: test with :func:`renders_depth`)."""

    def render_rgbd(self, camera: str, height: int, width: int, env_ids: torch.Tensor | None = None) -> RGBD:
        """RGB-D images of ``camera`` in worlds ``env_ids`` (all when None), on the backend's
        device. Colour is not anti-aliased: a multisampled depth buffer
        resolves to one sample per pixel, off the pixel centre."""
        ...


def renders_depth(backend: object) -> bool:
    """Whether ``backend`` implements :class:`DepthBackend`."""
    return callable(getattr(backend, "render_rgbd", None))


class BackendFactory(Protocol):
    def __call__(self, scene: str, num_envs: int, device: str | None) -> Backend:
        """Build ``num_envs`` worlds of the MJCF ``scene`` (a path relative to ``models/``)."""
        ...


BACKENDS: Registry[BackendFactory] = Registry("backend")


@BACKENDS.register("isaaclab")
def _isaaclab(scene: str, num_envs: int, device: str | None) -> Backend:
    """Isaac Lab (kit-less, Newton + MuJoCo Warp); needs Python 3.12 and ``robot-rl[isaaclab]``."""
    from robot_rl_sim.isaaclab import require_isaaclab

    require_isaaclab()
    from robot_rl_sim.isaaclab.backend import IsaacLabBackend

    return IsaacLabBackend(scene, num_envs, device)
