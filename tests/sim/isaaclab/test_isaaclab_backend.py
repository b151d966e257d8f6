"""Isaac Lab backend: USD conversion cache, features the conversion drops, the recorded CPU
graph, and ``robot_rl.envs.make(backend="isaaclab")``. Runs in the Python 3.12 environment
(``.ci/isaaclab``); skipped where Isaac Lab is not installed."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("isaaclab")

from robot_rl.envs import make  # noqa: E402
from robot_rl_sim.isaaclab.backend import IsaacLabBackend  # noqa: E402
from robot_rl_sim.isaaclab.usd import usd_for_scene, xml_digest  # noqa: E402
from robot_rl_sim.paths import scene_path  # noqa: E402

SCENE = "panda/scene_reach.xml"


def test_usd_cache_converts_once_per_xml(tmp_path) -> None:
    first = usd_for_scene(SCENE, tmp_path)
    assert first.converted and first.path.is_file() and first.path.suffix == ".usdc"
    stamp = first.path.stat().st_mtime_ns
    second = usd_for_scene(SCENE, tmp_path)
    assert not second.converted
    assert second.path == first.path and second.path.stat().st_mtime_ns == stamp

    # A different XML (one changed number) gets its own entry.
    changed = tmp_path / "scene_reach_heavier.xml"
    text = scene_path(SCENE).read_text().replace('<include file="panda.xml"/>',
                                                 f'<include file="{scene_path("panda/panda.xml")}"/>')
    changed.write_text(text.replace('impratio="10"', 'impratio="5"'))
    assert xml_digest(str(changed)) != xml_digest(SCENE)
    third = usd_for_scene(str(changed), tmp_path)
    assert third.converted and third.path.parent != first.path.parent


def test_second_construction_does_not_reconvert(tmp_path) -> None:
    built = []
    for _ in range(2):
        sim = IsaacLabBackend(SCENE, 2, "cpu", cache_dir=str(tmp_path))
        built.append(sim.usd)
        sim.close()
    assert built[0].converted and not built[1].converted
    assert built[0].path == built[1].path


def test_recorded_cpu_graph_gives_the_eager_results(tmp_path) -> None:
    """The replayed step loop computes exactly what launching every kernel computes."""
    results = []
    for graphs in (False, True):
        sim = IsaacLabBackend(SCENE, 2, "cpu", cache_dir=str(tmp_path), graphs=graphs)
        ctrl = torch.tensor(sim.model.key_ctrl[0], dtype=torch.float32).repeat(2, 1)
        ctrl[:, 0] += torch.tensor([0.3, -0.2])
        for _ in range(4):
            sim.step(ctrl, 25)
        results.append((sim.qpos.clone(), sim.qvel.clone(), sim.sensordata.clone()))
        sim.close()
    for eager, replayed in zip(*results):
        assert torch.equal(eager, replayed)
    assert results[0][0][0, 0] > 0.1 and results[0][0][1, 0] < -0.1  # joint 1 followed its targets


def test_make_with_the_isaaclab_backend(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ROBOT_RL_USD_CACHE", str(tmp_path))
    env = make("panda_reach", num_envs=3, backend="isaaclab", device="cpu")
    try:
        obs, _ = env.reset(seed=0)
        assert obs["policy"].shape == (3, 32) and obs["privileged"].shape == (3, 39)
        start = env.sim.qpos.clone()
        for _ in range(5):
            obs, reward, terminated, truncated, info = env.step(torch.ones(3, env.action_dim))
        assert torch.isfinite(reward).all() and set(info["reward_terms"]) <= {"reach", "distance", "success",
                                                                             "action_rate"}
        # Full positive actions raise every joint target by 0.1 rad per step: the arm moves.
        assert (env.sim.qpos[:, :7] - start[:, :7]).abs().max() > 0.05
        with pytest.raises(RuntimeError, match="does not render"):
            env.render()
    finally:
        env.close()


def test_set_dynamics_scales_gains_and_masses(tmp_path) -> None:
    sim = IsaacLabBackend(SCENE, 3, "cpu", cache_dir=str(tmp_path))
    try:
        art = sim._joints[0][0]
        before = (art.data.body_mass.torch.clone(), art.data.body_inertia.torch.clone())
        ids, ones = torch.arange(3), torch.ones(3)
        sim.set_dynamics(ids, ones, ones, ones)  # the model file's values: nothing changes
        torch.testing.assert_close(art.data.body_mass.torch, before[0])
        torch.testing.assert_close(art.data.body_inertia.torch, before[1], atol=1e-6, rtol=1e-5)

        # World 1 gets half the servo stiffness, world 2 twice the mass; same start, same targets.
        sim.set_dynamics(ids, torch.tensor([1.0, 1.0, 2.0]), ones, torch.tensor([1.0, 0.5, 1.0]))
        hand = sim.layout.body("hand")
        assert art.data.body_mass.torch[2, art.body_names.index("hand")] == pytest.approx(
            2 * float(sim.model.body_mass[hand]))
        qpos = torch.tensor(sim.model.key_qpos[0], dtype=torch.float32).repeat(3, 1)
        sim.set_state(ids, qpos, torch.zeros(3, sim.model.nv))
        ctrl = torch.tensor(sim.model.key_ctrl[0], dtype=torch.float32).repeat(3, 1)
        ctrl[:, 1] += 0.01  # small enough to stay below the force limit
        sim.step(ctrl, 5)
        lift = sim.qpos[:, 1] - qpos[:, 1]
        assert lift[1] < 0.9 * lift[0] and lift[2] < 0.9 * lift[0], lift
        with pytest.raises(ValueError, match="friction"):
            sim.set_dynamics(ids, ones, 2 * ones, ones)
    finally:
        sim.close()


def test_apply_wrench_pushes_the_body_until_removed(tmp_path) -> None:
    sim = IsaacLabBackend(SCENE, 2, "cpu", cache_dir=str(tmp_path))
    try:
        ids = torch.arange(2)
        qpos = torch.tensor(sim.model.key_qpos[0], dtype=torch.float32).repeat(2, 1)
        sim.set_state(ids, qpos, torch.zeros(2, sim.model.nv))
        hold = torch.tensor(sim.model.key_ctrl[0], dtype=torch.float32).repeat(2, 1)
        start = sim.sensor("ee_pos").clone()
        wrench = torch.zeros(2, 6)
        wrench[:, 0] = torch.tensor([50.0, -50.0])  # world-frame force along x, N
        sim.apply_wrench("hand", wrench)
        for _ in range(10):
            sim.step(hold, 25)
        pushed = sim.sensor("ee_pos")[:, 0] - start[:, 0]
        assert pushed[0] > 5e-4 and pushed[1] < -5e-4, pushed  # the stiff servos give way
        sim.apply_wrench("hand", torch.zeros(2, 6))
        for _ in range(20):
            sim.step(hold, 25)
        back = sim.sensor("ee_pos")[:, 0] - start[:, 0]
        assert back.abs().max() < 0.2 * pushed.abs().min(), (pushed, back)
    finally:
        sim.close()
