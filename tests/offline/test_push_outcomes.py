"""The push rollout diagnosis of ``benchmarks/offline_rl.py --part rollout``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from robot_rl.envs import make

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "offline_rl.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("offline_rl_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_push_outcomes_tells_a_still_arm_from_the_scripted_expert() -> None:
    from robot_rl_sim.scripted import ScriptedPusher

    bench = load_benchmark()
    env = make("panda_push", num_envs=8, seed=0, overrides={"action_space": "ee", "episode_length_s": 15.0})
    steps = 100  # the task's 5 s time limit at 20 Hz
    still, _, stalled = bench.push_outcomes(lambda obs: torch.zeros(8, 4), env, steps, seed=3)
    # Targets lie 10-20 cm from the cube, so an arm that never moves fails every episode, stalled.
    assert still["success"] == 0.0 and still["stalled failures"] == 1.0 and still["off the table"] == 0.0
    assert stalled.all()
    assert 0.1 <= still["failures' cube-target (m)"] <= 0.2
    expert = ScriptedPusher(env, ["expert"] * 8, seed=0)
    # From where the still arm left them, the expert gets most cubes onto the target.
    assert bench.expert_takeover(env, expert, stalled, steps)["expert from stalled"] >= 0.5
    assert torch.isnan(torch.tensor(bench.expert_takeover(env, expert, ~stalled, 1)["expert from stalled"]))

    pushed, _, _ = bench.push_outcomes(lambda obs: expert.act(), env, steps, seed=3)
    assert pushed["success"] >= 0.5 and pushed["off the table"] == 0.0
    env.close()


def test_a_run_reaches_the_target_when_a_window_of_evaluations_does() -> None:
    bench = load_benchmark()
    curve = [(2000, 0.5), (4000, 0.85), (6000, 0.7), (8000, 0.8), (10000, 0.9), (12000, 0.8)]
    assert bench.first_reaching(curve, 0.8) == 4000  # one lucky evaluation
    assert bench.first_reaching(curve, 0.8, window=3) == 10000  # 0.7, 0.8, 0.9
    assert bench.first_reaching(curve, 0.8, window=2) == 10000  # (0.85 + 0.7) / 2 falls short
    assert bench.first_reaching(curve, 0.95, window=2) is None
    assert bench.first_reaching(curve[:2], 0.8, window=3) is None  # fewer evaluations than the window
