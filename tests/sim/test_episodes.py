"""Scripted episodes for reward evaluation: IK, phase schedules and what the rendered episodes show."""

from __future__ import annotations

import numpy as np
import pytest

episodes = pytest.importorskip("robot_rl_sim.episodes")


def test_phase_schedules() -> None:
    rng = np.random.default_rng(0)
    expert = episodes.phase_schedule("expert", 20, rng)
    assert expert[0] == 0.0 and expert[-1] == 1.0 and np.all(np.diff(expert) >= 0)
    regressing = episodes.phase_schedule("regressing", 20, rng)
    assert regressing.max() >= 0.5 and regressing[-1] <= 0.2 and 5 <= regressing.argmax() <= 14
    noisy = episodes.phase_schedule("noisy", 20, rng)
    assert noisy[0] == 0.0 and 0.5 < noisy[-1] < 1.0 and noisy.min() >= 0.0
    with pytest.raises(ValueError, match="qualities"):
        episodes.phase_schedule("perfect", 20, rng)


@pytest.mark.parametrize("task", ["panda_reach", "panda_push"])
def test_rendered_episodes_show_the_scripted_progress(task: str) -> None:
    qualities = ["expert", "regressing", "random"]
    out = episodes.make_episodes(task, qualities, num_steps=16, seed=1, image_size=(32, 32))
    assert [e.quality for e in out] == qualities
    expert, regressing, random = out
    for e in out:
        assert e.images["front"].shape == (16, 32, 32, 3) and e.progress.shape == (16,)
        assert e.progress[0] == pytest.approx(0.0, abs=0.02)
    assert expert.success[-1] and expert.progress[-1] > 0.95
    assert np.all(np.diff(expert.progress) > -0.02)
    assert regressing.progress.max() > 0.3 and regressing.progress[-1] < regressing.progress.max() - 0.2
    assert not random.success.any()
    assert len({e.images["front"].tobytes() for e in out}) == 3


def test_ik_reaches_targets() -> None:
    from robot_rl.envs import make

    env = make("panda_reach", num_envs=1)
    try:
        env.reset(seed=0)
        ik = episodes.ArmIK(env.sim.model)
        q0 = env.sim.qpos[0].numpy().astype(np.float64)
        for target in ([0.5, 0.2, 0.3], [0.35, -0.25, 0.15]):
            q = ik.solve(q0, np.array(target), iters=100)
            assert np.linalg.norm(ik.tip(q) - target) < 2e-3
    finally:
        env.close()
