"""The MuJoCo Warp backend gives the native backend's numbers for the same inputs.

Warp runs on its CPU device here. Both backends are built once per module: compiling the
Warp kernels takes ~20 s on a cold cache, every later backend of the same model reuses them.

Tolerances: Warp integrates in float32, native in float64 (read out as float32). Measured
worst cases over these tests (200 control steps of 10 substeps sweeping every joint by up to
0.6 rad, a 50 N push on the hand, scaled gains and masses): 1.9e-6 in qpos (a few float32 ulps
of a 3 rad angle), 9.7e-7 in sensor values, 5.7e-5 in qvel (joint speeds reach ~2 rad/s and
take the solver's float32 round-off directly). The limits below are five times that, and
still far below what a semantic slip produces in the same sweep: sensors read after instead
of before the last substep move the tip by up to 9e-3 m, one substep too many moves a joint
by up to 2e-2 rad.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

pytest.importorskip("mujoco_warp")

from robot_rl.envs import make  # noqa: E402
from robot_rl_sim.mujoco_native import NativeBackend  # noqa: E402
from robot_rl_sim.mujoco_warp import WarpBackend  # noqa: E402
from robot_rl_sim.rendering import RendererUnavailableError  # noqa: E402

SCENE = "panda/scene_reach.xml"
N = 8
SUBSTEPS = 10
QPOS_TOL = 1e-5
QVEL_TOL = 3e-4
SENSOR_TOL = 1e-5

Pair = tuple[NativeBackend, WarpBackend]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    native, warp = NativeBackend(SCENE, N), WarpBackend(SCENE, N, "cpu")
    yield native, warp
    native.close()
    warp.close()


def _home_ctrl(sims: Pair) -> torch.Tensor:
    """float32[nu]: the controls of the scene's home keyframe."""
    return torch.tensor(sims[0].model.key_ctrl[0], dtype=torch.float32)


def _start(sims: Pair, spread: float = 0.2, seed: int = 0) -> None:
    """Put both backends into the same state: arm joints within ``spread`` (radians) of home,
    a different configuration per world, fingers half open, no wrenches, dynamics of the
    model file."""
    native, _ = sims
    layout = native.layout
    generator = torch.Generator().manual_seed(seed)
    qpos = torch.tensor(native.model.key_qpos[0], dtype=torch.float32).repeat(N, 1)
    qpos[:, :7] += spread * (torch.rand(N, 7, generator=generator) - 0.5)
    qpos[:, 7:] = 0.02
    ids, ones = torch.arange(N), torch.ones(N)
    for sim in sims:
        sim.apply_wrench("hand", torch.zeros(N, 6))
        sim.set_dynamics(ids, ones, ones, ones)
        sim.set_state(ids, qpos, torch.zeros(N, layout.nv))


def _step_both(sims: Pair, ctrl: torch.Tensor, substeps: int = SUBSTEPS) -> None:
    for sim in sims:
        sim.step(ctrl, substeps)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def _assert_same_state(sims: Pair) -> None:
    native, warp = sims
    assert _max_diff(warp.qpos, native.qpos) < QPOS_TOL
    assert _max_diff(warp.qvel, native.qvel) < QVEL_TOL
    assert _max_diff(warp.sensordata, native.sensordata) < SENSOR_TOL


def test_layout_and_initial_state_match_native(pair: Pair) -> None:
    native, warp = pair
    assert warp.layout == native.layout
    assert warp.qpos.shape == (N, native.layout.nq) and warp.qpos.dtype == torch.float32
    assert warp.mocap_pos.shape == (N, native.layout.nmocap, 3)
    # Read-outs are copies, like native's: writing to one must not move the simulation.
    warp.qpos[:] = 1.0
    assert (warp._qpos != 1.0).any()


def test_trajectories_match_native(pair: Pair) -> None:
    """200 control steps of a smooth sweep of every joint within its control range."""
    _start(pair)
    layout = pair[0].layout
    low, high = torch.tensor(layout.ctrl_low), torch.tensor(layout.ctrl_high)
    amplitude = torch.tensor([0.6, 0.35, 0.6, 0.5, 0.8, 0.5, 0.8, 0.02])
    frequency = torch.tensor([1.0, 1.3, 0.7, 1.1, 1.7, 0.9, 1.5, 2.0])
    phase = 0.9 * torch.arange(N, dtype=torch.float32)[:, None]
    centre = _home_ctrl(pair)
    centre[7] = 0.02
    worst = {"qpos": 0.0, "qvel": 0.0, "sensordata": 0.0}
    for k in range(200):
        ctrl = torch.clamp(centre + amplitude * torch.sin(0.03 * frequency * k + phase), low, high)
        _step_both(pair, ctrl)
        for name in worst:
            worst[name] = max(worst[name], _max_diff(getattr(pair[1], name), getattr(pair[0], name)))
    assert worst["qpos"] < QPOS_TOL, worst
    assert worst["qvel"] < QVEL_TOL, worst
    assert worst["sensordata"] < SENSOR_TOL, worst
    tip = pair[0].sensor("ee_pos")
    torch.testing.assert_close(pair[1].sensor("ee_pos"), tip, atol=SENSOR_TOL, rtol=0)


def test_apply_wrench_acts_like_native(pair: Pair) -> None:
    _start(pair, spread=0.0)  # identical worlds: only the wrench tells them apart
    hold = _home_ctrl(pair).repeat(N, 1)
    start = pair[1].sensor("ee_pos").clone()
    wrench = torch.zeros(N, 6)
    wrench[:, 0] = torch.linspace(-50.0, 50.0, N)  # force along x, N
    wrench[:, 5] = torch.linspace(5.0, -5.0, N)  # torque about z, N m: swapped halves would show
    for sim in pair:
        sim.apply_wrench("hand", wrench)
    for _ in range(20):
        _step_both(pair, hold)
    _assert_same_state(pair)
    pushed = pair[1].sensor("ee_pos")[:, 0] - start[:, 0]
    assert pushed[-1] - pushed[0] > 1e-3, pushed  # the stiff servos give way: 2.4 mm between +-50 N

    for sim in pair:
        sim.apply_wrench("hand", torch.zeros(N, 6))  # wrenches persist until replaced
    for _ in range(20):
        _step_both(pair, hold)
    _assert_same_state(pair)


def test_set_dynamics_changes_the_response_like_native(pair: Pair) -> None:
    _start(pair)
    scaled = torch.tensor([1, 3, 4, 6])
    gain = torch.tensor([0.2, 0.5, 2.0, 0.3])
    mass = torch.tensor([2.0, 0.5, 1.5, 3.0])
    for sim in pair:
        sim.set_dynamics(scaled, mass, torch.full((4,), 0.5), gain, bodies=("link6", "link7", "hand"))
    ctrl = _home_ctrl(pair).repeat(N, 1)
    ctrl[:, 1] += 0.4  # a step in the shoulder target: softer servos follow it more slowly
    for _ in range(15):
        _step_both(pair, ctrl)
    _assert_same_state(pair)
    shoulder = pair[1].layout.qpos("joint2").start
    error = (ctrl[:, 1] - pair[1].qpos[:, shoulder]).abs()
    assert error[1] > 2 * error[0]  # gain 0.2 lags the unscaled world 0


def test_set_state_updates_sensors_of_reset_worlds_only(pair: Pair) -> None:
    _start(pair)
    native, warp = pair
    ctrl = _home_ctrl(pair).repeat(N, 1)
    ctrl[:, 0] += 0.5
    for _ in range(5):
        _step_both(pair, ctrl)
    before = {name: getattr(warp, name).clone() for name in ("qpos", "qvel", "sensordata")}

    ids = torch.tensor([2, 5])
    qpos = torch.tensor(native.model.key_qpos[0], dtype=torch.float32).repeat(2, 1)
    qpos[:, 0] = torch.tensor([0.4, -0.4])
    qvel = torch.zeros(2, native.layout.nv)
    qvel[:, 1] = 0.3
    mocap = torch.tensor([[[0.4, 0.1, 0.3]], [[0.6, -0.2, 0.2]]])
    for sim in pair:
        sim.set_state(ids, qpos, qvel, mocap)

    others = torch.tensor([i for i in range(N) if i not in ids.tolist()])
    for name, value in before.items():  # untouched worlds keep state and sensors bit for bit
        assert torch.equal(getattr(warp, name)[others], value[others]), name
    torch.testing.assert_close(warp.sensor("target_pos")[ids], mocap[:, 0])
    torch.testing.assert_close(warp.mocap_pos[ids], mocap)
    assert _max_diff(warp.sensordata[ids], native.sensordata[ids]) < SENSOR_TOL
    assert _max_diff(warp.sensordata[ids], before["sensordata"][ids]) > 0.05
    for _ in range(5):
        _step_both(pair, ctrl)
    _assert_same_state(pair)


def test_render_matches_native(pair: Pair) -> None:
    _start(pair)
    try:
        native = pair[0].render("front", 48, 64, torch.tensor([1, 4]))
    except RendererUnavailableError as error:
        pytest.skip(str(error))
    warp = pair[1].render("front", 48, 64, torch.tensor([1, 4]))
    assert warp.shape == (2, 48, 64, 3) and warp.dtype == torch.uint8
    # float32 vs float64 joint angles may flip a few edge pixels, never the picture.
    assert (warp.int() - native.int()).abs().float().mean() < 1.0


def test_render_rgbd_matches_native(pair: Pair) -> None:
    _start(pair)
    ids = torch.tensor([1, 4])
    try:
        native = pair[0].render_rgbd("front", 48, 64, ids)
    except RendererUnavailableError as error:
        pytest.skip(str(error))
    warp = pair[1].render_rgbd("front", 48, 64, ids)
    assert warp.intrinsics == native.intrinsics and torch.allclose(warp.cam_to_world, native.cam_to_world)
    assert (warp.rgb.int() - native.rgb.int()).abs().float().mean() < 1.0
    assert (warp.depth - native.depth).abs().median() < 1e-3


def test_panda_reach_env_matches_native() -> None:
    """Same seed, same actions: same observations and rewards, through an automatic reset
    (episodes are 100 steps). The tip travels up to 0.9 m; observations and rewards stayed
    within 3.7e-6 of native.

    The actions stay moderate on purpose: the task feeds measured joint angles back into its
    targets, so a discrete event that float32 round-off can tip one way or the other -- a
    contact or joint limit starting a substep earlier, a servo's force reaching its
    forcerange (which drops it from the implicit damping) -- leaves a lasting offset of
    ~1e-4 rad. Full-scale sine actions hit such events after a few steps.
    """
    envs = [make("panda_reach", num_envs=N, backend="native"),
            make("panda_reach", num_envs=N, backend="warp", device="cpu")]
    (native_obs, _), (warp_obs, _) = (env.reset(seed=0) for env in envs)
    assert _max_diff(warp_obs["policy"], native_obs["policy"]) < SENSOR_TOL
    phase = torch.arange(N, dtype=torch.float32)[:, None] + torch.arange(envs[0].action_dim)[None]
    worst_obs = worst_reward = 0.0
    for k in range(200):
        actions = 0.5 * torch.sin(0.07 * k + phase)
        (native_obs, native_reward, *_), (warp_obs, warp_reward, *_) = (env.step(actions) for env in envs)
        worst_obs = max(worst_obs, _max_diff(warp_obs["policy"], native_obs["policy"]))
        worst_reward = max(worst_reward, _max_diff(warp_reward, native_reward))
    for env in envs:
        env.close()
    assert worst_obs < 3e-5 and worst_reward < 3e-5, (worst_obs, worst_reward)


def test_panda_reach_with_ee_actions_matches_native() -> None:
    """The end-effector action space reads the arm's kinematic sensors (link frames, joint axes)
    and solves for joint targets in torch: the same on both backends."""
    envs = [make("panda_reach", num_envs=N, backend="native", overrides={"action_space": "ee"}),
            make("panda_reach", num_envs=N, backend="warp", device="cpu", overrides={"action_space": "ee"})]
    for env in envs:
        env.reset(seed=2)
    jacobians = [env.task.tip_jacobian(env.sim) for env in envs]
    assert _max_diff(jacobians[1], jacobians[0]) < 1e-5
    phase = torch.arange(N, dtype=torch.float32)[:, None] + torch.arange(4)[None]
    worst = 0.0
    for k in range(60):
        actions = 0.5 * torch.sin(0.1 * k + phase)
        (native_obs, *_), (warp_obs, *_) = (env.step(actions) for env in envs)
        worst = max(worst, _max_diff(warp_obs["policy"], native_obs["policy"]))
    for env in envs:
        env.close()
    assert worst < 3e-5, worst
