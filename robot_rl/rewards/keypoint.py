"""KAGI-style keypoint rewards: keypoints found in each world's camera image become that world's
waypoints, and a tracked tool point earns a dense reward for closing on them until the task
succeeds (Lee et al. 2024, "Affordance-guided reinforcement learning via visual prompting").

    # rewards.modules[i] of a launch file (panda_push); see launch/train/panda_push_keypoint.yaml
    name: keypoint
    options:
      detector: runs/perception/panda_push/perception.pt     # or labeller: http, or oracle: true
      waypoints:
        - {at: cube, toward: [target, -0.06]}   # 6 cm behind the cube, on the line to the target
        - {at: target, toward: [cube, 0.05]}    # 5 cm short of the target: the cube ends on it
      tracked_state: [23, 26]                    # the tool point in the policy observation

**Waypoints per world.** At every reset of a world, a keypoint source
(:mod:`~robot_rl.rewards.keypoint_sources`) locates the named keypoints in that world's first
RGB-D frame: a perception model (``detector``), a VLM server marking pixels (``labeller: http``)
or, privileged, the simulator's true positions seen through the camera (``oracle``). Each
waypoint is a keypoint moved by ``offset`` (world, metres) and by ``toward: [other, metres]``
along the horizontal line to another keypoint (negative: away from it). A world where a keypoint
the waypoints need is not found (NaN, low confidence) scores 0 for that episode and is counted
(:meth:`KeypointReward.diagnostics`): never a waypoint at a silent zero. Fixed ``waypoints``
float[W, 3] without a source are shared by every world (data given by hand).

**Tracked point.** ``tracked_state: [start, stop]``: columns of the state (the policy
observation) holding it, e.g. the tool point a robot measures from its joint angles; or
``tracked: <keypoint>``: found by the source in every step's frame (detector or oracle), the last
point found standing in where a step's detection fails (counted). Worlds that just finished keep
the point of their previous step: their final frame is gone once the env resets them.

**Reward.** Per world the module keeps the next waypoint, advancing past every waypoint the point
is within ``tolerance`` of. While the sparse success signal is 0 the reward is dense in the
distance d still to go: with ``dense: path`` (default) the distance to the next waypoint plus the
lengths of the legs after it, so passing a waypoint costs nothing (with ``dense: next``, the
distance to the next waypoint alone: the reward drops when a waypoint is passed, which teaches a
policy to hover short of it); ``shape: linear`` gives −``distance_scale``·d, ``shape: tanh``
1 − tanh(d / ``distance_scale``), positive, so ending an episode early never pays. Where success
is 1 it is ``success_reward`` instead (KAGI: the dense term only guides until the task succeeds).
:class:`~robot_rl.rewards.compose.RewardWrapper` feeds ``success`` (the task's), resets the worlds
that finish and shows the module their first frames.

progress = (passed waypoints + fraction of the current leg covered) / number of waypoints,
a leg running from the previous waypoint (or the point's position at the first score after a
reset) to the next one. done = success, or every waypoint passed.

:func:`lift_pixels` lifts pixels of one image through open3d (``PointCloud.create_from_depth_image``
with a ``PinholeCameraIntrinsic``; the inverse of the camera-to-world pose is open3d's
world-to-camera ``extrinsic``); batches go through :mod:`robot_rl.perception.geometry`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rl.rewards.base import REWARDS, FrameRequest, Frames, RewardOutput


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


@dataclass(frozen=True)
class Waypoint:
    """A waypoint made from keypoints: keypoint ``at`` moved by ``offset`` (world, metres), then
    ``toward[1]`` metres along the horizontal line from ``at`` to keypoint ``toward[0]``
    (negative: away from it)."""

    at: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    toward: tuple[str, float] | None = None

    @classmethod
    def parse(cls, raw: Any, where: str) -> Waypoint:
        """From ``"cube"`` or ``{at: cube, offset: [x, y, z], toward: [target, metres]}``."""
        if isinstance(raw, str):
            return cls(raw)
        if not isinstance(raw, Mapping) or "at" not in raw:
            raise ValueError(f"keypoint: {where} must be a keypoint name or {{at: NAME, offset: [x, y, z], "
                             f"toward: [NAME, metres]}}, got {raw!r}")
        unknown = sorted(set(raw) - {"at", "offset", "toward"})
        if unknown:
            raise ValueError(f"keypoint: {where} has unknown keys {unknown}; valid: at, offset, toward")
        offset = tuple(float(x) for x in raw.get("offset", (0.0, 0.0, 0.0)))
        toward = raw.get("toward")
        if len(offset) != 3 or not np.isfinite(offset).all():
            raise ValueError(f"keypoint: {where}.offset must be three finite numbers (metres), got {raw['offset']!r}")
        if toward is not None:
            if (not isinstance(toward, Sequence) or isinstance(toward, str) or len(toward) != 2
                    or not isinstance(toward[0], str) or not np.isfinite(float(toward[1]))):
                raise ValueError(f"keypoint: {where}.toward must be [keypoint name, metres], got {toward!r}")
            toward = (toward[0], float(toward[1]))
        return cls(str(raw["at"]), offset, toward)

    def names(self) -> tuple[str, ...]:
        return (self.at,) if self.toward is None else (self.at, self.toward[0])


def place_waypoints(specs: Sequence[Waypoint], points: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Waypoints float32[n, W, 3] from keypoint world points ``{name: float32[n, 3]}`` (NaN where a
    keypoint they need is NaN, or where ``toward`` names a keypoint at the same place)."""
    out = []
    for spec in specs:
        p = points[spec.at].float() + torch.tensor(spec.offset, dtype=torch.float32, device=points[spec.at].device)
        if spec.toward is not None:
            d = points[spec.toward[0]].float() - points[spec.at].float()
            d = torch.cat([d[:, :2], torch.zeros_like(d[:, 2:])], dim=1)
            norm = torch.linalg.norm(d, dim=1, keepdim=True)
            unit = torch.where(norm > 1e-6, d / norm.clamp_min(1e-6), torch.full_like(d, float("nan")))
            p = p + spec.toward[1] * unit
        out.append(p)
    return torch.stack(out, dim=1)


DENSE = ("path", "next")
SHAPES = ("linear", "tanh")


@REWARDS.register("keypoint")
class KeypointReward:
    """Dense distance-to-go along per-world keypoint waypoints, gated by sparse success (see the
    module docstring).

    Args:
        waypoints: keypoint waypoints (names or ``{at, offset, toward}``, see :class:`Waypoint`)
            when a source is given; else fixed world positions float[W, 3] shared by every world.
        tracked_state: (start, stop) columns of ``state`` holding the tracked point (x, y, z).
        tracked: a keypoint name the source finds in every step's frame instead.
        detector: a perception model file (``robot-rl perception-train``) or a loaded estimator.
        labeller: ``"http"``: a VLM server marks the keypoints; ``labeller_options`` are
            :class:`~robot_rl.rewards.labellers.http.HTTPLabellerConfig` fields (``base_url``,
            ``model``, ...) plus ``describe`` {name: words}, ``upscale``, ``grid``, ``max_tokens``.
        oracle: privileged: the simulator's true keypoints seen through the camera (tests, ablations).
        oracle_sensors: keypoint name -> simulator sensor for the oracle (default: cube, target, tip).
        camera, image_size: what the labeller and oracle read (default ``front``, 128x128); the
            detector reads what it was trained on and refuses anything else.
        min_confidence: the detector's threshold (default: the model's).
        tolerance: a waypoint counts as reached within this distance (metres).
        success_reward: the reward where the sparse success signal is 1.
        distance_scale: metres -> reward (linear), or the width of the tanh kernel (metres).
        dense: ``"path"`` (distance to go along the waypoints) or ``"next"`` (to the next one).
        shape: ``"linear"`` (−scale·d) or ``"tanh"`` (1 − tanh(d / scale)).
    """

    uses_images = False
    uses_state = True

    def __init__(self, waypoints, tracked_state: Sequence[int] | None = None, tracked: str | None = None,
                 detector: Any = None, labeller: str | None = None, labeller_options: dict | None = None,
                 oracle: bool = False, oracle_sensors: dict[str, str] | None = None, camera: str | None = None,
                 image_size: Sequence[int] | None = None, min_confidence: float | None = None,
                 tolerance: float = 0.03, success_reward: float = 1.0, distance_scale: float = 1.0,
                 dense: str = "path", shape: str = "linear") -> None:
        if dense not in DENSE or shape not in SHAPES:
            raise ValueError(f"keypoint: dense must be one of {', '.join(DENSE)} and shape one of {', '.join(SHAPES)}, "
                             f"got {dense!r}, {shape!r}")
        if tolerance <= 0 or distance_scale <= 0:
            raise ValueError(f"keypoint: tolerance and distance_scale must be positive, got {tolerance}, "
                             f"{distance_scale}")
        self.source = _source(detector, labeller, labeller_options, oracle, oracle_sensors, camera, image_size,
                              min_confidence)
        if self.source is None:
            self.specs: tuple[Waypoint, ...] = ()
            self._fixed = torch.as_tensor(np.asarray(waypoints, dtype=np.float32)).reshape(-1, 3)
            if len(self._fixed) == 0 or not torch.isfinite(self._fixed).all():
                raise ValueError(f"keypoint: waypoints must be finite float[W >= 1, 3], got {self._fixed.tolist()}")
            if tracked is not None:
                raise ValueError("keypoint: tracked names a keypoint to detect; give a source (detector or oracle)")
        else:
            if isinstance(waypoints, str) or not isinstance(waypoints, Sequence) or len(waypoints) == 0:
                raise ValueError(f"keypoint: waypoints must be a list of keypoint waypoints, got {waypoints!r}")
            self.specs = tuple(Waypoint.parse(w, f"waypoints[{i}]") for i, w in enumerate(waypoints))
            self._fixed = None
            needed = dict.fromkeys(n for spec in self.specs for n in spec.names())
            missing = [n for n in [*needed, *([tracked] if tracked else [])] if n not in self.source.names]
            if missing:
                raise ValueError(f"keypoint: the {type(self.source).__name__} does not know keypoints {missing}; "
                                 f"it finds {', '.join(self.source.names)}")
            self._needed = tuple(needed)
            if tracked is None and tracked_state is None:
                raise ValueError("keypoint: say where the tracked point comes from: tracked_state: [start, stop] "
                                 "(columns of the observation) or tracked: <keypoint>")
        if tracked is not None and tracked_state is not None:
            raise ValueError("keypoint: give tracked_state or tracked, not both")
        if tracked is not None and not self.source.per_step:
            raise ValueError(f"keypoint: the {type(self.source).__name__} is too slow to find the tracked point every "
                             "step; use tracked_state (the tool point from the joint angles)")
        if tracked_state is not None:
            tracked_state = tuple(int(x) for x in tracked_state)
            if len(tracked_state) != 2 or tracked_state[1] - tracked_state[0] != 3:
                raise ValueError(f"keypoint: tracked_state must span 3 columns (x, y, z), got {tracked_state}")
        self.tracked_state, self.tracked = tracked_state, tracked
        self.tolerance, self.success_reward, self.distance_scale = tolerance, success_reward, distance_scale
        self.dense, self.shape = dense, shape
        self.reset_frames: FrameRequest | None = None if self.source is None else self.source.request
        """What :meth:`reset` reads of the worlds that start an episode."""
        self.step_frames: FrameRequest | None = None if tracked is None else self.source.request
        """What :meth:`score` reads after every step (the tracked keypoint's frames)."""
        self.waypoints: torch.Tensor | None = None
        """float32[N, W, 3]: each world's waypoints this episode."""
        self.valid: torch.Tensor | None = None
        """bool[N]: the world's waypoints were found this episode (else it scores 0)."""
        self.next_index: torch.Tensor | None = None
        """int64[N]: per world, the waypoint to reach next (W when all are passed)."""
        self._leg_start: torch.Tensor | None = None
        self._last_tracked: torch.Tensor | None = None
        self.counts = {"resets": 0, "failed_resets": 0, "tracked_missed": 0}
        """Worlds reset, worlds whose keypoints were not found at reset (scored 0 for the
        episode), and scored steps without a detected tracked point (scored 0)."""

    @classmethod
    def from_pixels(cls, pixels, depth, intrinsics: Sequence[float], cam_to_world, offsets=None,
                    **options) -> KeypointReward:
        """Fixed waypoints lifted from keypoint pixels float[W, 2] of one depth image (see
        :func:`lift_pixels`), each moved by ``offsets`` float[W, 3] (world, metres) if given,
        e.g. to hover above a marked object."""
        points = lift_pixels(pixels, depth, intrinsics, cam_to_world)
        if offsets is not None:
            points = points + np.asarray(offsets, dtype=np.float64).reshape(-1, 3)
        if not np.isfinite(points).all():
            raise ValueError("keypoint: some keypoints have no depth reading (background or beyond the far plane)")
        return cls(points, **options)

    # -- the wrapper's hooks -------------------------------------------------------------------

    def check_scene(self, task: str | None, cameras: Sequence[str]) -> None:
        """ValueError when the source was not made for ``task`` or reads a camera not in ``cameras``."""
        if self.source is not None:
            self.source.check_scene(task, cameras)

    def diagnostics(self) -> dict[str, float]:
        """Counters since the module was built: worlds reset, worlds whose keypoints were not
        found (and their fraction), steps without a tracked point, and the source's own."""
        out = {key: float(value) for key, value in self.counts.items()}
        out["failed_reset_fraction"] = self.counts["failed_resets"] / max(1, self.counts["resets"])
        if self.source is not None:
            out.update({f"source/{key}": float(value) for key, value in self.source.counts.items()})
        return out

    def reset(self, env_ids: torch.Tensor | None = None, frames: Frames | None = None) -> None:
        """Worlds ``env_ids`` int64[n] start again from their first waypoint; with a source their
        waypoints are found in ``frames`` (those worlds' first frames). ``env_ids=None`` without
        frames forgets every world (fixed waypoints only)."""
        if self.source is not None:
            if frames is None:
                raise ValueError("keypoint: the waypoints come from each world's camera: reset needs the frames of "
                                 "the worlds that reset (RewardWrapper passes them)")
            self._allocate(frames.num_envs, frames.env_ids.device)
            ids = frames.env_ids
            points = self.source.locate(frames, self._needed).to(self.waypoints.device)
            waypoints = place_waypoints(self.specs, {name: points[:, i] for i, name in enumerate(self._needed)})
            found = torch.isfinite(waypoints).all(dim=2).all(dim=1)
            self.waypoints[ids] = torch.where(found[:, None, None], waypoints, torch.zeros_like(waypoints))
            self.valid[ids] = found
            self.counts["resets"] += len(ids)
            self.counts["failed_resets"] += int((~found).sum())
        elif env_ids is None or self.next_index is None:
            self.next_index = None
            return
        else:
            ids = env_ids
        self.next_index[ids] = 0
        self._leg_start[ids] = float("nan")
        self._last_tracked[ids] = float("nan")

    def _allocate(self, n: int, device: torch.device) -> None:
        if self.next_index is not None and len(self.next_index) == n:
            return
        count = len(self.specs) if self.source is not None else len(self._fixed)
        self.waypoints = (torch.zeros(n, count, 3, device=device) if self.source is not None
                          else self._fixed.to(device).expand(n, count, 3).clone())
        self.valid = torch.full((n,), self.source is None, dtype=torch.bool, device=device)
        self.next_index = torch.zeros(n, dtype=torch.long, device=device)
        self._leg_start = torch.full((n, 3), float("nan"), device=device)
        self._last_tracked = torch.full((n, 3), float("nan"), device=device)

    # -- scoring -------------------------------------------------------------------------------

    @torch.no_grad()
    def score(self, images: torch.Tensor | None, state: torch.Tensor | None, goal: str,
              success: torch.Tensor | None = None, frames: Frames | None = None) -> RewardOutput:
        """state float32[B, D] (the tracked point in columns ``tracked_state``), success bool[B]
        (None = 0), frames of the worlds that did not just finish (with ``tracked``) ->
        reward, progress float32[B], done bool[B]."""
        if self.tracked is not None:
            if self.next_index is None:
                raise ValueError("keypoint: no waypoints yet: reset the env through its RewardWrapper first")
            if frames is not None and len(frames.env_ids):
                (point,) = self.source.locate(frames, (self.tracked,)).to(self._last_tracked.device).unbind(1)
                found = torch.isfinite(point).all(dim=1)
                self._last_tracked[frames.env_ids[found]] = point[found]
            return self.score_points(self._last_tracked, success)
        if state is None or self.tracked_state is None:
            raise ValueError("keypoint: pass state with the tracked point in columns tracked_state "
                             "(set options.tracked_state), or call score_points")
        return self.score_points(state[:, self.tracked_state[0]:self.tracked_state[1]], success)

    @torch.no_grad()
    def score_points(self, points: torch.Tensor, success: torch.Tensor | None = None) -> RewardOutput:
        """Tracked points float32[B, 3] (world; NaN: not found this step) and success bool[B] ->
        RewardOutput; advances each world's next waypoint."""
        points = points.float()
        b, device = points.shape[0], points.device
        if self.source is None:
            self._allocate(b, device)
        elif self.next_index is None or len(self.next_index) != b:
            known = 0 if self.next_index is None else len(self.next_index)
            raise ValueError("keypoint: no waypoints for these worlds yet: reset the env through its RewardWrapper "
                             f"first ({b} worlds scored, {known} reset)")
        waypoints, index = self.waypoints.to(device), self.next_index
        count, rows = waypoints.shape[1], torch.arange(b, device=device)
        seen = torch.isfinite(points).all(dim=1)
        self.counts["tracked_missed"] += int((~seen & self.valid).sum())
        live = seen & self.valid.to(device)
        points = torch.where(live[:, None], points, torch.zeros_like(points))
        fresh = live & torch.isnan(self._leg_start[:, 0])
        self._leg_start[fresh] = points[fresh]
        for _ in range(count):  # pass every waypoint already within tolerance
            target = waypoints[rows, index.clamp_max(count - 1)]
            reached = live & (index < count) & (torch.linalg.norm(points - target, dim=1) < self.tolerance)
            if not reached.any():
                break
            self._leg_start[reached] = target[reached]
            index = index + reached.long()
        self.next_index = index
        finished = index >= count
        target = waypoints[rows, index.clamp_max(count - 1)]
        distance = torch.where(finished, torch.zeros_like(points[:, 0]), torch.linalg.norm(points - target, dim=1))
        leg = torch.linalg.norm(target - self._leg_start, dim=1).clamp_min(1e-6)
        covered = torch.where(finished, torch.ones_like(leg), (1.0 - distance / leg).clamp(0.0, 1.0))
        progress = (index.clamp_max(count).float() - finished.float() + covered) / count
        to_go = distance
        if self.dense == "path":
            legs = torch.linalg.norm(waypoints[:, 1:] - waypoints[:, :-1], dim=2)  # [B, W-1]: waypoint j to j+1
            after = torch.cat([legs.flip(1).cumsum(1).flip(1), torch.zeros(b, 1, device=device)], dim=1)
            # after[b, k] float[B, W]: the length of the path from waypoint k to the last one
            rest = after[rows, index.clamp_max(count - 1)]
            to_go = distance + torch.where(finished, torch.zeros_like(distance), rest)
        dense = (-self.distance_scale * to_go if self.shape == "linear"
                 else 1.0 - torch.tanh(to_go / self.distance_scale))
        succeeded = torch.zeros(b, dtype=torch.bool, device=device) if success is None else success.to(device).bool()
        reward = torch.where(succeeded, torch.full_like(dense, self.success_reward), dense)
        progress = torch.where(succeeded, torch.ones_like(progress), progress)
        scored = live | (succeeded & self.valid)  # the rest: keypoints not found (counted), reward 0
        zero = torch.zeros_like(reward)
        return RewardOutput(reward=torch.where(scored, reward, zero), progress=torch.where(scored, progress, zero),
                            done=(succeeded | finished) & self.valid)


def _source(detector, labeller, labeller_options, oracle, oracle_sensors, camera, image_size, min_confidence):
    """The keypoint source the options name (None: fixed waypoints)."""
    from robot_rl.rewards import keypoint_sources as sources

    chosen = [name for name, given in (("detector", detector is not None), ("labeller", labeller is not None),
                                       ("oracle", bool(oracle))) if given]
    if len(chosen) > 1:
        raise ValueError(f"keypoint: give one keypoint source, got {' and '.join(chosen)}")
    if labeller_options and labeller is None:
        raise ValueError("keypoint: labeller_options without labeller: set labeller: http")
    if oracle_sensors and not oracle:
        raise ValueError("keypoint: oracle_sensors without oracle: true")
    view = {"camera": camera or "front", "image_size": tuple(int(x) for x in (image_size or (128, 128)))}
    if detector is not None:
        source = sources.DetectorSource(Path(detector) if isinstance(detector, str) else detector, min_confidence)
        source.estimator.check(camera=camera, image_size=tuple(image_size) if image_size else None,
                               source="the keypoint reward's detector")
        return source
    if min_confidence is not None:
        raise ValueError("keypoint: min_confidence is the detector's threshold; give a detector")
    if labeller is not None:
        return sources.LabellerSource(labeller, labeller_options, **view)
    if oracle:
        return sources.OracleSource(sensors=oracle_sensors, **view)
    return None
