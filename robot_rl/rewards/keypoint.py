"""KAGI-style keypoint rewards: image keypoints lifted to 3D waypoints, dense reward to the next one.

    points = lift_pixels(pixels, depth, intrinsics, cam_to_world)      # float[K, 2] -> float[K, 3] world
    module = REWARDS.get("keypoint")(waypoints=points, tracked_state=(23, 26), tolerance=0.03)
    out = module.score(None, state=float32[B, D], goal="", success=bool[B])
    out.reward, out.progress, out.done

Keypoints are pixels (u = column, v = row) marked on a camera image by a user or a VLM (none is
called here: they are input data). :func:`lift_pixels` lifts them with the camera's depth image
and intrinsics through open3d (``PointCloud.create_from_depth_image`` with a
``PinholeCameraIntrinsic``; with the inverse of the camera-to-world pose as open3d's
world-to-camera ``extrinsic``, the points come out in world coordinates). The simulator gives
all three: ``robot_rl_sim.rendering.DepthRenderer.render_rgbd`` and ``camera_intrinsics``.

The reward follows a list of waypoints with a tracked point (e.g. the gripper tip, read from
``state`` columns, or any point passed to :meth:`KeypointReward.score_points`, such as a lifted
keypoint). Per world it keeps the index of the next waypoint, advancing past every waypoint
the point is within ``tolerance`` of. While the sparse success signal is 0 the reward is dense,
−``distance_scale`` · ‖point − next waypoint‖ (0 once all are passed); where success is 1 it is
``success_reward`` instead (KAGI: the dense term only guides until the task succeeds).

progress = (passed waypoints + fraction of the current leg covered) / number of waypoints,
a leg running from the previous waypoint (or the point's position at the first score after a
reset) to the next one. done = success, or every waypoint passed.

The module is stateful per world: call :meth:`KeypointReward.reset` with the worlds that reset.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from robot_rl.rewards.base import REWARDS, RewardOutput


def lift_pixels(pixels, depth, intrinsics: Sequence[float], cam_to_world=None) -> np.ndarray:
    """Lift pixels float[K, 2] (u = column, v = row; rounded to the nearest pixel) of a depth
    image float[H, W] (metres along the viewing axis, 0 = no reading) to points float64[K, 3]
    with open3d. ``intrinsics`` = (fx, fy, cx, cy) in pixels (pixel-index convention);
    ``cam_to_world`` float[4, 4] in the OpenCV convention (x right, y down, z forward) gives
    world coordinates, None camera coordinates. Pixels without a depth reading give NaN."""
    import open3d as o3d

    depth = np.ascontiguousarray(np.asarray(depth, dtype=np.float32))
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    h, w = depth.shape
    cols, rows = np.rint(pixels[:, 0]).astype(int), np.rint(pixels[:, 1]).astype(int)
    if ((cols < 0) | (cols >= w) | (rows < 0) | (rows >= h)).any():
        raise ValueError(f"keypoint pixels {pixels.tolist()} fall outside the {w}x{h} image")
    fx, fy, cx, cy = (float(x) for x in intrinsics)
    intrinsic = o3d.camera.PinholeCameraIntrinsic(w, h, fx, fy, cx, cy)
    extrinsic = np.eye(4) if cam_to_world is None else np.linalg.inv(np.asarray(cam_to_world, dtype=np.float64))
    cloud = o3d.geometry.PointCloud.create_from_depth_image(
        o3d.geometry.Image(depth), intrinsic, extrinsic, depth_scale=1.0, depth_trunc=float(np.inf),
        project_valid_depth_only=False,  # keep one point per pixel (NaN where invalid), row-major
    )
    return np.asarray(cloud.points).reshape(h, w, 3)[rows, cols]


def project_points(points, intrinsics: Sequence[float], cam_to_world=None) -> np.ndarray:
    """The inverse of :func:`lift_pixels` without rounding: points float[K, 3] (world, or camera
    when ``cam_to_world`` is None) -> pixels float64[K, 2] (u, v)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if cam_to_world is not None:
        world_to_cam = np.linalg.inv(np.asarray(cam_to_world, dtype=np.float64))
        points = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    fx, fy, cx, cy = (float(x) for x in intrinsics)
    return np.stack([fx * points[:, 0] / points[:, 2] + cx, fy * points[:, 1] / points[:, 2] + cy], axis=1)


@REWARDS.register("keypoint")
class KeypointReward:
    """Dense distance-to-next-waypoint reward gated by sparse success (see the module docstring).

    Args:
        waypoints: float[W, 3] world positions, in the order to visit them.
        tracked_state: (start, stop) columns of ``state`` holding the tracked point (x, y, z);
            None when points are passed to :meth:`score_points` directly.
        tolerance: a waypoint counts as reached within this distance (metres).
        success_reward: the reward where the sparse success signal is 1.
        distance_scale: metres -> reward units of the dense term.
    """

    uses_images = False
    uses_state = True

    def __init__(self, waypoints, tracked_state: tuple[int, int] | None = None, tolerance: float = 0.03,
                 success_reward: float = 1.0, distance_scale: float = 1.0) -> None:
        self.waypoints = torch.as_tensor(np.asarray(waypoints, dtype=np.float32)).reshape(-1, 3)
        if len(self.waypoints) == 0 or not torch.isfinite(self.waypoints).all():
            raise ValueError(f"keypoint: waypoints must be finite float[W >= 1, 3], got {self.waypoints.tolist()}")
        if tracked_state is not None and tracked_state[1] - tracked_state[0] != 3:
            raise ValueError(f"keypoint: tracked_state must span 3 columns (x, y, z), got {tracked_state}")
        self.tracked_state = tracked_state
        self.tolerance, self.success_reward, self.distance_scale = tolerance, success_reward, distance_scale
        self.next_index: torch.Tensor | None = None
        """int64[B]: per world, the waypoint to reach next (W when all are passed)."""
        self._leg_start: torch.Tensor | None = None

    @classmethod
    def from_pixels(cls, pixels, depth, intrinsics: Sequence[float], cam_to_world, offsets=None,
                    **options) -> KeypointReward:
        """Waypoints lifted from keypoint pixels float[W, 2] of one depth image (see
        :func:`lift_pixels`), each moved by ``offsets`` float[W, 3] (world, metres) if given,
        e.g. to hover above a marked object."""
        points = lift_pixels(pixels, depth, intrinsics, cam_to_world)
        if offsets is not None:
            points = points + np.asarray(offsets, dtype=np.float64).reshape(-1, 3)
        if not np.isfinite(points).all():
            raise ValueError("keypoint: some keypoints have no depth reading (background or beyond the far plane)")
        return cls(points, **options)

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        """Start worlds ``env_ids`` int64[n] (all when None) again from the first waypoint."""
        if env_ids is None or self.next_index is None:
            self.next_index = self._leg_start = None
            return
        self.next_index[env_ids] = 0
        self._leg_start[env_ids] = float("nan")

    @torch.no_grad()
    def score(self, images: torch.Tensor | None, state: torch.Tensor | None, goal: str,
              success: torch.Tensor | None = None) -> RewardOutput:
        """state float32[B, D] (the tracked point in columns ``tracked_state``), success bool[B]
        (None = 0) -> reward, progress float32[B], done bool[B]."""
        if state is None or self.tracked_state is None:
            raise ValueError("keypoint: pass state with the tracked point in columns tracked_state "
                             "(set options.tracked_state), or call score_points")
        return self.score_points(state[:, self.tracked_state[0]:self.tracked_state[1]], success)

    @torch.no_grad()
    def score_points(self, points: torch.Tensor, success: torch.Tensor | None = None) -> RewardOutput:
        """Tracked points float32[B, 3] (world) and success bool[B] -> RewardOutput; advances
        each world's next waypoint."""
        points = points.float()
        b, device = points.shape[0], points.device
        waypoints = self.waypoints.to(device)
        count = len(waypoints)
        if self.next_index is None or len(self.next_index) != b:
            self.next_index = torch.zeros(b, dtype=torch.long, device=device)
            self._leg_start = torch.full((b, 3), float("nan"), device=device)
        fresh = torch.isnan(self._leg_start[:, 0])
        self._leg_start[fresh] = points[fresh]
        for _ in range(count):  # pass every waypoint already within tolerance
            target = waypoints[self.next_index.clamp_max(count - 1)]
            reached = (self.next_index < count) & (torch.linalg.norm(points - target, dim=1) < self.tolerance)
            if not reached.any():
                break
            self._leg_start[reached] = target[reached]
            self.next_index = self.next_index + reached.long()
        finished = self.next_index >= count
        target = waypoints[self.next_index.clamp_max(count - 1)]
        distance = torch.where(finished, torch.zeros_like(points[:, 0]), torch.linalg.norm(points - target, dim=1))
        leg = torch.linalg.norm(target - self._leg_start, dim=1).clamp_min(1e-6)
        covered = torch.where(finished, torch.ones_like(leg), (1.0 - distance / leg).clamp(0.0, 1.0))
        progress = (self.next_index.clamp_max(count).float() - finished.float() + covered) / count
        succeeded = torch.zeros(b, dtype=torch.bool, device=device) if success is None else success.to(device).bool()
        dense = -self.distance_scale * distance
        reward = torch.where(succeeded, torch.full_like(dense, self.success_reward), dense)
        return RewardOutput(reward=reward, progress=torch.where(succeeded, torch.ones_like(progress), progress),
                            done=succeeded | finished)
