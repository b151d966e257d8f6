"""End to end, push from the camera: the fake arm simulates the push scene and publishes colour,
depth and camera info; the policy node pairs them and asks its estimator for the cube, here one
whose ``detect`` gives the true cube (read from the fake arm's ground-truth file, which no robot
node reads) plus 5 mm of noise; the policy is the scripted push expert written as a network over
the perceived observation (87.5% success over 16 simulated episodes, measured). The node judges
success from the estimated cube; the test checks the true cube independently."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from perception_helpers import NodeThread, ScriptedPush, detections, estimator_file, push_policy, replace_detect
from ros_helpers import Probe, wait_for

from robot_rl_ros import messages as M
from robot_rl_ros.config import load_robot
from robot_rl_ros.transition import from_message

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROBOT = Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml"
CONFIG = load_robot(ROBOT)
CUBE = (0.5, 0.0, 0.3)
GOAL = (0.52, 0.15, 0.0)  # 15 cm from the cube, in panda_push's target range


def test_push_from_the_camera_reaches_its_goal_on_the_fake_arm(processes, tmp_path: Path) -> None:
    from robot_rl_ros.policy_node import PolicyNode, PolicyNodeParams
    from robot_rl_sim.constants import panda

    policy = push_policy(tmp_path / "push.pt", ScriptedPush())
    model = estimator_file(tmp_path / "perception.pt")
    truth = tmp_path / "truth.csv"
    arm = processes.start("robot_rl_ros.fake_arm", "--ros-args", "-p", f"robot:={ROBOT}", "-p", "camera_hz:=30.0",
                          "-p", "scene:=panda/scene_push.xml", "-p", f"cube:={list(CUBE)}",
                          "-p", f"initial_arm:={list(panda.TABLE_READY_QPOS)}", "-p", f"target:={list(GOAL)}",
                          "-p", f"ground_truth:={truth}")
    rng = np.random.default_rng(0)

    def true_cube() -> np.ndarray:
        return np.loadtxt(truth, delimiter=",", ndmin=2)[-1, 1:]

    def detect(rgb: Any, depth: Any, cam_to_world: Any = None, **kwargs: Any) -> Any:
        return detections({"cube": true_cube() + rng.normal(0.0, 0.005, 3), "target": np.array(GOAL)},
                          {"cube": 0.9, "target": 0.9})

    probe = Probe()
    published = probe.listen(CONFIG.topics.transition, M.FLOAT64_ARRAY)
    params = PolicyNodeParams(robot=str(ROBOT), policy=str(policy), perception=str(model), target=GOAL, episodes=1,
                              episode_length_s=15.0, teleop=False, backend="cyclone", camera_wait_s=60.0)
    node = PolicyNode(params, CONFIG, "policy_node")
    replace_detect(node, detect)
    wait_for(lambda: truth.is_file() and truth.stat().st_size > 0, 60, "the fake arm's ground truth")
    start = true_cube()
    run = NodeThread(node).start()
    try:
        run.thread.join(90)
        assert not run.thread.is_alive(), "the push episode did not end within 90 s"
        time.sleep(0.2)
        end = true_cube()
    finally:
        run.close()
        probe.close()
        processes.stop(arm)
    assert run.error is None and run.result == 0, run.error
    assert node.outcomes == [True], node.summary()
    steps = [from_message(m) for _, m in published]
    assert steps and steps[-1].done and steps[-1].success
    # The true cube, which the node never saw: pushed from 15 cm away to the goal (success is 5 cm,
    # judged on the estimate, which is 5 mm off on each axis).
    np.testing.assert_allclose(start[:2], CUBE[:2], atol=2e-3)
    assert np.linalg.norm(end[:2] - np.array(GOAL[:2])) < 0.065, end
    summary = node.summary()
    assert summary["median_perception_ms"] is not None and summary["median_latency_ms"] < 50.0, summary
