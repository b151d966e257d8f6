"""Keypoint rewards: depth rendering and camera geometry, lifting pixels to 3D with open3d, and the
gated waypoint reward on a rendered panda_reach scene; per-world waypoints from each world's camera
frames on panda_push (a colour detector standing in for a trained model, the oracle, and a stub
VLM server marking pixels), the success gate and failed detections through the RewardWrapper."""

from __future__ import annotations

import base64
import copy
import json
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.configs import TrainConfig, load
from robot_rl.envs import make
from robot_rl.perception import Detections, EstimatorInfo, Keypoint, KeypointEstimator, geometry
from robot_rl.rewards.base import REWARDS, RewardModule
from robot_rl.rewards.compose import RewardTerm, RewardWrapper
from robot_rl.rewards.keypoint import KeypointReward, lift_pixels, project_points
from robot_rl.rewards.labellers.pointing import annotate, parse_points
from robot_rl.rewards.metrics import spearman
from robot_rl.training.runner import build_env

mujoco = pytest.importorskip("mujoco")
pytest.importorskip("open3d")

H, W = 240, 320
RADIUS = 0.02  # the target sphere of scene_reach.xml


@pytest.fixture(scope="module")
def scene():
    """A panda_reach world, an expert episode of it, and an RGB-D renderer of its model in which the
    target sphere is opaque (MuJoCo draws transparent geoms without writing depth)."""
    from robot_rl_sim.episodes import render_episodes
    from robot_rl_sim.rendering import DepthRenderer

    env = make("panda_reach", num_envs=1, image_cameras=("front",), image_size=(64, 64), seed=3)
    episode = render_episodes(env, ["expert"], num_steps=30, seed=3)[0]
    model = copy.copy(env.sim.model)
    model.geom_rgba[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "target"), 3] = 1.0
    renderer = DepthRenderer(model, H, W)
    try:
        yield env, episode, renderer
    finally:
        renderer.close()
        env.close()


def _world(env, episode, t: int):
    model = env.sim.model
    data = mujoco.MjData(model)
    data.qpos[:] = episode.qpos[t]
    data.mocap_pos[:] = episode.mocap_pos[t]
    mujoco.mj_forward(model, data)
    return model, data


def test_depth_and_camera_geometry_match_ray_casting(scene) -> None:
    env, episode, renderer = scene
    model, data = _world(env, episode, 0)
    _, depth, pose = renderer.render_rgbd("front", episode.qpos[:1].astype(np.float64),
                                          episode.mocap_pos[:1].astype(np.float64))
    fx, fy, cx, cy = renderer.intrinsics("front")
    assert fx == fy == pytest.approx(0.5 * H / np.tan(np.deg2rad(45.0) / 2))  # fovy 45 in scene_reach.xml
    geom = np.zeros(1, np.int32)
    for u, v in [(10, 200), (160, 120), (300, 180), (80, 230), (200, 90)]:
        ray = pose[0][:3, :3] @ np.array([(u - cx) / fx, (v - cy) / fy, 1.0])  # z-component 1 in the camera
        hit = mujoco.mj_ray(model, data, pose[0][:3, 3], ray, None, 1, -1, geom)
        assert hit > 0
        assert depth[0, v, u] == pytest.approx(hit, abs=2e-3)  # mj_ray's distance is in units of |ray|: z-depth


def test_target_pixel_lifts_back_to_the_sphere_surface(scene) -> None:
    env, episode, renderer = scene
    qpos, mocap = episode.qpos[:1].astype(np.float64), episode.mocap_pos[:1].astype(np.float64)
    _, depth, pose = renderer.render_rgbd("front", qpos, mocap)
    intrinsics = renderer.intrinsics("front")
    centre = mocap[0, env.sim.layout.mocap_row("target")]
    pixel = np.rint(project_points(centre, intrinsics, pose[0]))  # as a user or a VLM would mark it
    lifted = lift_pixels(pixel, depth[0], intrinsics, pose[0])[0]
    # Where the ray through that pixel meets the sphere first.
    fx, fy, cx, cy = intrinsics
    origin = pose[0][:3, 3]
    ray = pose[0][:3, :3] @ np.array([(pixel[0, 0] - cx) / fx, (pixel[0, 1] - cy) / fy, 1.0])
    ray /= np.linalg.norm(ray)
    along = ray @ (centre - origin)
    surface = origin + (along - np.sqrt(RADIUS**2 - np.sum((origin + along * ray - centre) ** 2))) * ray
    assert np.linalg.norm(lifted - surface) < 0.01
    assert abs(np.linalg.norm(lifted - centre) - RADIUS) < 0.01
    # Pixels are (column, row); off-image pixels and pixels without depth are refused.
    with pytest.raises(ValueError, match="outside"):
        lift_pixels([[W, 0]], depth[0], intrinsics, pose[0])
    with pytest.raises(ValueError, match="no depth"):
        KeypointReward.from_pixels([[0, 0]], np.zeros((H, W), np.float32), intrinsics, pose[0])


def test_waypoint_reward_hand_computed() -> None:
    module = REWARDS.get("keypoint")(waypoints=[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], tolerance=0.1,
                                     success_reward=2.0, dense="next")
    assert isinstance(module, RewardModule)
    # Start 0.5 m from the first waypoint: that leg is 0.5 long and none of it is covered.
    out = module.score_points(torch.tensor([[0.5, 0.0, 0.0]]))
    assert out.reward.tolist() == pytest.approx([-0.5]) and out.progress.tolist() == pytest.approx([0.0])
    # Within tolerance of the first: on to the second, 0.95 away on a leg of 1 -> (1 + 0.05) / 2.
    out = module.score_points(torch.tensor([[0.05, 0.0, 0.0]]))
    assert out.reward.tolist() == pytest.approx([-0.95]) and out.progress.tolist() == pytest.approx([0.525])
    assert module.next_index.tolist() == [1] and not bool(out.done[0])
    # Both passed: no distance left, progress 1, done.
    out = module.score_points(torch.tensor([[1.0, 0.0, 0.05]]))
    assert out.reward.tolist() == [0.0] and out.progress.tolist() == [1.0] and bool(out.done[0])
    # Sparse success takes over from the dense term.
    module.reset()
    state = torch.tensor([[9.0, 0.3, 0.0, 0.4], [9.0, 0.3, 0.0, 0.4]])
    gated = KeypointReward([[0.0, 0.0, 0.0]], tracked_state=(1, 4))
    out = gated.score(None, state, "", success=torch.tensor([True, False]))
    assert out.reward.tolist() == pytest.approx([1.0, -0.5]) and out.done.tolist() == [True, False]
    # Per-world state: resetting one world sends it back to the first waypoint.
    module.score_points(torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]))
    assert module.next_index.tolist() == [1, 0]
    module.reset(torch.tensor([0]))
    assert module.next_index.tolist() == [0, 0]


def test_path_distance_does_not_drop_when_a_waypoint_is_passed() -> None:
    """dense: path (the default) counts the legs still ahead: 0.5 to the first waypoint + the
    1.0 leg after it = 1.5; at 0.05 past the first, 0.95. ``next`` would jump from -0.11 to -0.95
    there, so a policy would learn to stop short of the first waypoint."""
    waypoints = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    module = KeypointReward(waypoints, tolerance=0.1)
    assert module.score_points(torch.tensor([[0.5, 0.0, 0.0]])).reward.tolist() == pytest.approx([-1.5])
    before = module.score_points(torch.tensor([[0.11, 0.0, 0.0]])).reward
    after = module.score_points(torch.tensor([[0.05, 0.0, 0.0]])).reward
    assert before.tolist() == pytest.approx([-1.11]) and after.tolist() == pytest.approx([-0.95])
    # shape tanh: 1 - tanh(d / scale), positive; 1 once every waypoint is passed.
    kernel = KeypointReward(waypoints, tolerance=0.1, shape="tanh", distance_scale=0.5)
    out = kernel.score_points(torch.tensor([[0.5, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert out.reward.tolist() == pytest.approx([1 - np.tanh(3.0), 1 - np.tanh(4.0)], abs=1e-6)
    kernel.score_points(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    assert kernel.score_points(torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.0, 0.0]])).reward.tolist() == pytest.approx(
        [1.0, 1 - np.tanh(1.0)], abs=1e-6)


def test_lifted_keypoint_guides_the_expert_tip(scene) -> None:
    env, episode, renderer = scene
    _, depth, pose = renderer.render_rgbd("front", episode.qpos[:1].astype(np.float64),
                                          episode.mocap_pos[:1].astype(np.float64))
    intrinsics = renderer.intrinsics("front")
    centre = episode.mocap_pos[0, env.sim.layout.mocap_row("target")]
    pixel = np.rint(project_points(centre, intrinsics, pose[0]))
    start = episode.tip[0]
    # A KAGI-style plan: halfway to the marked target, then the target itself.
    target = lift_pixels(pixel, depth[0], intrinsics, pose[0])[0]
    module = KeypointReward([(start + target) / 2, target], tracked_state=(0, 3), tolerance=0.04)
    rewards, progress, legs = [], [], []
    for t in range(len(episode.progress)):
        state = torch.from_numpy(episode.tip[t:t + 1])
        out = module.score(None, state, "", success=torch.from_numpy(episode.success[t:t + 1]))
        rewards.append(float(out.reward[0]))
        progress.append(float(out.progress[0]))
        legs.append(int(module.next_index[0]))
    rewards, legs = np.array(rewards), np.array(legs)
    assert legs[0] == 0 and legs.max() == 2 and np.all(np.diff(legs) >= 0)
    # The dense term (distance to go along the path) rises along each leg.
    dense = ~episode.success
    for leg in (0, 1):
        steps = np.diff(rewards[dense & (legs == leg)])
        assert len(steps) > 2 and np.all(steps > -1e-3)
    assert np.all(rewards[episode.success] == 1.0) and episode.success[-1]
    assert spearman(progress, episode.progress) > 0.95


# -- per-world waypoints from each world's camera frames (panda_push) ------------------------------

SIZE = (96, 96)
PUSH = [{"at": "cube", "toward": ["target", -0.045]}, {"at": "target", "offset": [0.0, 0.0, 0.025]}]
"""Behind the cube on the line to the target, then the target at the cube's height."""


def colour_pixels(rgb: torch.Tensor) -> torch.Tensor:
    """uint8[n, H, W, 3] -> float32[n, 2, 2]: the centroid pixels (u, v) of the red cube and of the
    green target disc, NaN where fewer than 3 pixels have the colour."""
    rgb = torch.as_tensor(rgb).int()
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v, u = torch.meshgrid(torch.arange(rgb.shape[1]), torch.arange(rgb.shape[2]), indexing="ij")
    out = []
    for mask in ((r > 150) & (g < 80) & (b < 80), (g > r + 40) & (g > b + 40)):
        count = mask.sum(dim=(1, 2)).float()
        centre = torch.stack([(mask * u).sum(dim=(1, 2)) / count, (mask * v).sum(dim=(1, 2)) / count], dim=1)
        out.append(torch.where(count[:, None] >= 3, centre, torch.full_like(centre, float("nan"))))
    return torch.stack(out, dim=1).float()


class ColourDetector(KeypointEstimator):
    """Stands in for a trained model: finds the red cube and the green target by colour and lifts
    their pixels with the depth image. ``fail_first``: the first image of every call is a miss
    (confidence 0.1, under the model's 0.3)."""

    def __init__(self, task: str = "panda_push", fail_first: bool = False) -> None:
        super().__init__(EstimatorInfo(task=task, camera="front", image_size=SIZE,
                                       intrinsics=geometry.intrinsics_for(45.0, *SIZE),
                                       cam_to_world=tuple(tuple(row) for row in np.eye(4).tolist()),
                                       keypoints=(Keypoint("cube"), Keypoint("target"))))
        self.fail_first = fail_first

    def detect(self, rgb, depth, cam_to_world=None, intrinsics=None) -> Detections:
        pixels = colour_pixels(rgb)
        points = geometry.lift_pixels(pixels, torch.as_tensor(depth).float(), self.info.intrinsics,
                                      torch.as_tensor(cam_to_world))
        confidence = torch.isfinite(points).all(dim=2).float()
        if self.fail_first:
            confidence[0] = 0.1
        names = self.info.names
        return Detections(*({k: x[:, i] for i, k in enumerate(names)} for x in (pixels, points, confidence)))


def wrapped(module: KeypointReward, num_envs: int, **overrides) -> tuple:
    env = make("panda_push", num_envs=num_envs, seed=0, overrides=overrides or None)
    return env, RewardWrapper(env, [RewardTerm(module, "keypoint")], task_weight=0.0)


def expected_waypoints(env) -> torch.Tensor:
    """float32[N, 2, 3]: PUSH made from the true cube and target positions."""
    cube, target = env.sim.sensor("cube_pos"), env.sim.sensor("target_pos")
    line = torch.nn.functional.normalize((target - cube)[:, :2], dim=1)
    behind = cube - 0.045 * torch.cat([line, torch.zeros(len(line), 1)], dim=1)
    return torch.stack([behind, target + torch.tensor([0.0, 0.0, 0.025])], dim=1)


def test_per_world_waypoints_follow_each_worlds_reset_targets() -> None:
    module = KeypointReward(PUSH, tracked_state=(23, 26), detector=ColourDetector())
    env, env_wrapped = wrapped(module, 2, episode_length_s=0.25)  # 5 steps an episode
    try:
        env_wrapped.reset(seed=0)
        truth = expected_waypoints(env)
        assert torch.linalg.norm(truth[0, 1] - truth[1, 1]) > 0.05  # two worlds, two targets
        # Found in each world's image: the target disc to within 1.5 cm, the cube's visible face 3 cm.
        assert torch.allclose(module.waypoints[:, 1, :2], truth[:, 1, :2], atol=0.015)
        assert torch.allclose(module.waypoints[:, 0, :2], truth[:, 0, :2], atol=0.03)
        assert module.valid.tolist() == [True, True]
        first = module.waypoints.clone()
        for step in range(5):
            _, _, _, truncated, _ = env_wrapped.step(torch.zeros(2, env.action_dim))
            if step < 4:
                assert not truncated.any() and torch.equal(module.waypoints, first)  # fixed within an episode
        assert truncated.all()  # both reset: new targets, new waypoints
        renewed = expected_waypoints(env)
        assert (torch.linalg.norm(renewed[:, 1] - truth[:, 1], dim=1) > 0.02).all()
        assert torch.allclose(module.waypoints[:, 1, :2], renewed[:, 1, :2], atol=0.015)
        assert module.diagnostics()["resets"] == 4 and module.diagnostics()["failed_resets"] == 0
    finally:
        env_wrapped.close()


def test_success_gate_runs_through_the_reward_wrapper() -> None:
    """Where the task succeeds the reward is success_reward and the dense term is off."""
    module = KeypointReward(PUSH, tracked_state=(23, 26), oracle=True, image_size=SIZE, shape="tanh",
                            distance_scale=0.2, success_reward=2.0)
    env, env_wrapped = wrapped(module, 8, target_distance=(0.0, 0.1))  # success iff the target is within 5 cm
    try:
        env_wrapped.reset(seed=0)
        # The oracle: true points up to pixel rounding (the cube's line to a target this close turns with it).
        assert torch.allclose(module.waypoints[:, 1], expected_waypoints(env)[:, 1], atol=0.01)
        _, reward, _, _, info = env_wrapped.step(torch.zeros(8, env.action_dim))
        success = info["success"]
        assert success.any() and (~success).any()
        assert reward[success].tolist() == [2.0] * int(success.sum())
        assert ((reward[~success] > 0) & (reward[~success] < 1)).all()
        assert torch.equal(info["reward_terms"]["keypoint/raw"], reward)
    finally:
        env_wrapped.close()


def test_failed_detection_scores_zero_for_the_episode_and_is_counted() -> None:
    module = KeypointReward(PUSH, tracked_state=(23, 26), detector=ColourDetector(fail_first=True), shape="tanh",
                            distance_scale=0.2)
    env, env_wrapped = wrapped(module, 2)
    try:
        env_wrapped.reset(seed=0)
        assert module.valid.tolist() == [False, True]
        for _ in range(3):
            _, reward, _, _, _ = env_wrapped.step(torch.zeros(2, env.action_dim))
            # World 0 scores 0, not the kernel's value for waypoints at the origin (~0.1 here).
            assert reward[0].item() == 0.0 and reward[1].item() > 0.0
        metrics = env_wrapped.learning_metrics()
        assert metrics["reward_diagnostics/keypoint/failed_resets"] == 1.0
        assert metrics["reward_diagnostics/keypoint/failed_reset_fraction"] == 0.5
        assert metrics["reward_diagnostics/keypoint/source/low_confidence"] == 2.0  # cube and target of world 0
    finally:
        env_wrapped.close()


def test_tracked_point_detected_every_step_matches_the_measured_tool_point() -> None:
    measured = KeypointReward(PUSH, tracked_state=(23, 26), oracle=True, image_size=SIZE)
    seen = KeypointReward(PUSH, tracked="tip", oracle=True, image_size=SIZE)
    assert seen.step_frames is not None and measured.step_frames is None
    env = make("panda_push", num_envs=3, seed=0)
    env_wrapped = RewardWrapper(env, [RewardTerm(measured, "measured"), RewardTerm(seen, "seen")], task_weight=0.0)
    try:
        env_wrapped.reset(seed=0)
        for _ in range(2):
            _, _, _, _, info = env_wrapped.step(0.3 * torch.ones(3, env.action_dim))
        found = torch.isfinite(seen._last_tracked).all(dim=1)
        assert found.any()
        tip = env.sim.sensor("ee_pos")
        assert torch.allclose(seen._last_tracked[found], tip[found], atol=0.01)
        terms = info["reward_terms"]
        assert torch.allclose(terms["seen/raw"][found], terms["measured/raw"][found], atol=0.02)
    finally:
        env_wrapped.close()


def test_option_mistakes_are_refused() -> None:
    with pytest.raises(ValueError, match="one keypoint source, got detector and oracle"):
        KeypointReward(PUSH, tracked_state=(23, 26), detector=ColourDetector(), oracle=True)
    with pytest.raises(ValueError, match=r"does not know keypoints \['handle'\]"):
        KeypointReward([{"at": "handle"}], tracked_state=(23, 26), detector=ColourDetector())
    with pytest.raises(ValueError, match="say where the tracked point comes from"):
        KeypointReward(PUSH, oracle=True)
    with pytest.raises(ValueError, match="unknown keys"):
        KeypointReward([{"at": "cube", "ofset": [0, 0, 1]}], tracked_state=(23, 26), oracle=True)
    with pytest.raises(ValueError, match="too slow"):
        KeypointReward(PUSH, tracked="tip", labeller="http")
    with pytest.raises(ValueError, match="trained for task 'panda_push', not 'panda_lift'"):
        RewardWrapper(make("panda_lift", num_envs=1), [RewardTerm(KeypointReward(
            PUSH, tracked_state=(23, 26), detector=ColourDetector()), "keypoint")])
    module = KeypointReward(PUSH, tracked_state=(23, 26), oracle=True)
    with pytest.raises(ValueError, match="reset the env through its RewardWrapper"):
        module.score(None, torch.zeros(2, 40), "")
    env = make("panda_push", num_envs=1)
    env.sim.render_rgbd = None  # a backend without depth is refused before any episode
    with pytest.raises(ValueError, match="keypoint reads RGB-D frames of camera 'front'; NativeBackend renders no"):
        RewardWrapper(env, [RewardTerm(module, "keypoint")])


# -- a served VLM marks the keypoints (stub server on the loopback) --------------------------------

def decode_png(data: bytes) -> np.ndarray:
    """uint8[H, W, 3] from the PNG bytes of ``encode_png`` (8-bit RGB, filter 0 on every row)."""
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = [], 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        if kind == b"IDAT":
            chunks.append(data[at + 8:at + 8 + length])
        at += 12 + length
    rows = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8).reshape(height, 1 + 3 * width)
    return rows[:, 1:].reshape(height, width, 3)


@pytest.fixture
def pointing_server():
    """A chat-completions stub that marks the red cube and the green disc where their colours are,
    in the pixels of the picture it is sent; ``state["null"]`` makes it leave the cube out."""
    state = {"requests": [], "null": False}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["requests"].append(body)
            content = body["messages"][0]["content"]
            url = next(part["image_url"]["url"] for part in content if part["type"] == "image_url")
            picture = decode_png(base64.b64decode(url.split(",", 1)[1]))
            (cube, target), = colour_pixels(torch.from_numpy(picture.copy())[None]).tolist()
            marks = {"cube": None if state["null"] else [round(x) for x in cube], "target": [round(x) for x in target]}
            answer = json.dumps({"choices": [{"message": {"content": f"Here: {json.dumps(marks)}"}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_served_vlm_marks_the_keypoints_end_to_end(pointing_server) -> None:
    state, url = pointing_server
    options = {"base_url": url, "model": "stub-vlm", "timeout_s": 5.0, "retries": 0, "max_workers": 2, "upscale": 4}
    module = KeypointReward(PUSH, tracked_state=(23, 26), labeller="http", labeller_options=options,
                            image_size=SIZE)
    env, env_wrapped = wrapped(module, 2)
    try:
        env_wrapped.reset(seed=0)
        truth = expected_waypoints(env)
        assert module.valid.tolist() == [True, True]
        assert torch.allclose(module.waypoints[:, 1, :2], truth[:, 1, :2], atol=0.015)
        assert torch.allclose(module.waypoints[:, 0, :2], truth[:, 0, :2], atol=0.03)
        assert len(state["requests"]) == 2  # one per world
        request = state["requests"][0]
        prompt = request["messages"][0]["content"][1]["text"]
        assert request["model"] == "stub-vlm" and "384 pixels wide and 384 pixels tall" in prompt
        assert "cube: the centre of the top face of the red cube" in prompt and env.goal in prompt
        _, reward, _, _, _ = env_wrapped.step(torch.zeros(2, env.action_dim))
        assert (reward < 0).all()
        # Points the model leaves out fail the world (counted), never a guess.
        state["null"] = True
        env_wrapped.reset(seed=1)
        assert module.valid.tolist() == [False, False]
        diagnostics = module.diagnostics()
        assert diagnostics["failed_resets"] == 2 and diagnostics["source/missing_points"] == 2
        _, reward, _, _, _ = env_wrapped.step(torch.zeros(2, env.action_dim))
        assert reward.tolist() == [0.0, 0.0]
    finally:
        env_wrapped.close()


def test_pointing_answers_are_read_strictly() -> None:
    text = 'Sure! {"cube": [10, 20.5], "target": null, "tip": [1, 2, 3]}'
    points = parse_points(text, ["cube", "target", "tip", "handle"])
    assert points[0] == (10.0, 20.5) and all(np.isnan(p).all() for p in points[1:])
    assert all(np.isnan(p).all() for p in parse_points("no idea", ["cube"]))
    picture = annotate(np.zeros((4, 3, 3), np.uint8), upscale=4, grid=8)
    assert picture.shape == (16, 12, 3) and picture[8, 1, 0] == 127 and picture[1, 1, 0] == 0


# -- launch files ---------------------------------------------------------------------------------

LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "train"


def estimator_file(path: Path, task: str) -> Path:
    info = EstimatorInfo(task=task, camera="front", image_size=(64, 64),
                         intrinsics=geometry.intrinsics_for(45.0, 64, 64),
                         cam_to_world=tuple(tuple(row) for row in np.eye(4).tolist()),
                         keypoints=(Keypoint("cube", (0.0, 0.0, -0.025)), Keypoint("target"), Keypoint("tip")), width=8)
    return KeypointEstimator(info).save(path)


def test_keypoint_launch_files_build_envs_with_task_weight_zero(tmp_path: Path, monkeypatch) -> None:
    cfg = load(TrainConfig, LAUNCH / "panda_push_keypoint.yaml")
    (module,) = cfg.rewards.modules
    assert cfg.rewards.task_weight == 0.0 and module.name == "keypoint" and "detector" in module.options
    with monkeypatch.context() as here:
        here.chdir(tmp_path)  # the launch file's relative model path, where no model was trained
        with pytest.raises(FileNotFoundError, match="perception-train"):
            build_env(cfg, num_envs=1)
    # A model for panda_push (here untrained) sets camera and image size; one for another task is refused.
    model = estimator_file(tmp_path / "push.pt", "panda_push")
    env = build_env(load(TrainConfig, LAUNCH / "panda_push_keypoint.yaml",
                         ["--rewards.modules.0.options.detector", str(model)]), num_envs=2)
    try:
        env.reset(seed=0)
        _, reward, _, _, _ = env.step(torch.zeros(2, env.action_dim))
        assert torch.isfinite(reward).all() and env.learning_metrics()["reward_diagnostics/keypoint/resets"] == 2
    finally:
        env.close()
    other = estimator_file(tmp_path / "lift.pt", "panda_lift")
    with pytest.raises(ValueError, match="trained for task 'panda_lift', not 'panda_push'"):
        build_env(load(TrainConfig, LAUNCH / "panda_push_keypoint.yaml",
                       ["--rewards.modules.0.options.detector", str(other)]), num_envs=1)
    env = build_env(load(TrainConfig, LAUNCH / "panda_push_keypoint_oracle.yaml"), num_envs=2)
    try:
        env.reset(seed=0)
        _, reward, _, _, info = env.step(torch.zeros(2, env.action_dim))
        assert set(info["reward_terms"]) == {"task/raw", "keypoint", "keypoint/raw"} and (reward > 0).all()
    finally:
        env.close()
