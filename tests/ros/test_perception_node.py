"""The policy node with a perception model: a stale image pair, a cube found with too little
confidence or not found (NaN) makes it hold; a model for another task, camera or image size is
refused before the node joins the network; a camera without depth stops it naming the topic; a
push policy needs a model."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from perception_helpers import (
    PUSH,
    Constant,
    NodeThread,
    detections,
    estimator_file,
    push_policy,
    replace_detect,
)
from ros_helpers import Probe, wait_for

from robot_rl_ros import messages as M
from robot_rl_ros.config import load_robot
from robot_rl_ros.qos import SENSOR_DATA
from robot_rl_ros.transition import from_message

pytestmark = pytest.mark.ros

ROBOT = Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml"
CONFIG = load_robot(ROBOT)
T = CONFIG.topics
GOAL = (0.5, 0.15, 0.0)
CUBE = np.array([0.5, 0.0, 0.025])


@pytest.fixture(scope="module")
def still_push(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A push policy (ee actions, no gripper, perceived cube) that asks for no motion."""
    return push_policy(tmp_path_factory.mktemp("push") / "policy.pt", Constant([0.0, 0.0, 0.0]))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("perception")
    return {"push": estimator_file(root / "push.pt"),
            "lift": estimator_file(root / "lift.pt", task="panda_lift"),
            "wrist": estimator_file(root / "wrist.pt", camera="wrist"),
            "small": estimator_file(root / "small.pt", size=(64, 64))}


class RobotAndCamera:
    """This test's stand-in for the robot: joint states at 100 Hz and, while ``camera_on``,
    colour, depth and camera info with one stamp at 20 Hz."""

    def __init__(self, probe: Probe, size: tuple[int, int] = (CONFIG.camera.height, CONFIG.camera.width),
                 depth: bool = True) -> None:
        pub = probe.transport.publisher
        self.states = pub(T.joint_states, M.JOINT_STATE, SENSOR_DATA)
        self.colour = pub(T.image, M.IMAGE, SENSOR_DATA)
        self.depth = pub(T.depth, M.IMAGE, SENSOR_DATA) if depth else None
        self.info = pub(T.camera_info, M.CAMERA_INFO, SENSOR_DATA)
        self.size, self.camera_on, self.done = size, True, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        names = list(CONFIG.arm_joints + CONFIG.gripper_joints)
        position = np.append(CONFIG.home, [0.0, 0.0])
        h, w = self.size
        rgb, depth = np.zeros((h, w, 3), np.uint8), np.ones((h, w), np.float32)
        tick = 0
        while not self.done.wait(0.01):
            self.states.publish(M.joint_state(names, position, np.zeros(9)))
            tick += 1
            if self.camera_on and tick % 5 == 0:
                stamp = M.now_ns()
                self.colour.publish(M.image(rgb, stamp, "front"))
                if self.depth is not None:
                    self.depth.publish(M.depth_image(depth, stamp, "front"))
                self.info.publish(M.camera_info(h, w, (110.0, 110.0, (w - 1) / 2, (h - 1) / 2), stamp, "front"))

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)


def make_node(policy: Path, model: Path | str, **params: Any) -> Any:
    from robot_rl_ros.policy_node import PolicyNode, PolicyNodeParams

    values = {"robot": str(ROBOT), "policy": str(policy), "perception": str(model), "target": GOAL,
              "teleop": False, "backend": "cyclone", **params}
    return PolicyNode(PolicyNodeParams(**values), CONFIG, "policy_node")


def test_node_holds_on_stale_low_confidence_and_missing_estimates(still_push: Path, models: dict[str, Path], ros_env,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    mode = {"confidence": 0.9, "cube": CUBE}
    calls = []

    def detect(rgb: Any, depth: Any, cam_to_world: Any = None, **kwargs: Any) -> Any:
        calls.append((tuple(rgb.shape), tuple(depth.shape), cam_to_world, kwargs))
        return detections({"cube": mode["cube"], "target": np.full(3, np.nan)},
                          {"cube": mode["confidence"], "target": 0.0})

    probe = Probe()
    transitions = probe.listen(T.transition, M.FLOAT64_ARRAY)
    probe.listen(T.holding, M.BOOL)
    commands = probe.listen(CONFIG.command_topic, M.FLOAT64_ARRAY)
    robot = RobotAndCamera(probe)
    node = make_node(still_push, models["push"], max_image_age_s=0.2)
    replace_detect(node, detect)
    run = NodeThread(node).start()

    def acting(what: str) -> None:
        t = time.monotonic()
        wait_for(lambda: len(probe.since(T.transition, t)) >= 5, 30, what)
        assert not any(m.data for m in probe.since(T.holding, t + 0.1))

    def held(reason: str) -> None:
        t = time.monotonic()
        wait_for(lambda: reason in caplog.text and probe.since(T.holding, t + 0.15), 5, f"a hold: {reason}")
        time.sleep(0.5)
        assert not probe.since(T.transition, t + 0.15), f"the node stepped while {reason}"
        assert all(m.data for m in probe.since(T.holding, t + 0.15))
        sent = [np.asarray(m.data) for m in probe.since(CONFIG.command_topic, t + 0.15)]
        assert sent and all(np.array_equal(c, sent[0]) for c in sent)  # the hold command, re-sent

    try:
        acting("steps with a confident estimate")
        step = from_message(transitions[-1][1])
        assert step.observation.shape == (33,)
        np.testing.assert_allclose(step.observation[21:24], CUBE, atol=1e-6)  # the estimated cube
        np.testing.assert_allclose(step.observation[24:27], GOAL, atol=1e-12)
        shape, depth_shape, pose, kwargs = calls[-1]
        assert shape == (1, 128, 128, 3) and depth_shape == (1, 128, 128) and pose is None
        assert "intrinsics" in kwargs  # the camera's K differs from the model's: the calibration is used
        assert commands

        mode["confidence"] = 0.1
        held("cube found with confidence 0.10 < 0.3")
        mode["confidence"], mode["cube"] = 0.9, np.full(3, np.nan)
        held("cube not found (off the image or no valid depth at its pixel)")
        mode["cube"] = CUBE
        acting("steps again")

        robot.camera_on = False
        held("camera images are")
        robot.camera_on = True
        acting("steps once images come again")
    finally:
        run.close()
        robot.close()
        probe.close()
    assert run.error is None, run.error
    assert node.perception_holds > 10
    summary = node.summary()
    assert summary["success_judged_from"] == "the estimated cube" and summary["median_perception_ms"] is not None


def test_an_episode_whose_cube_is_lost_still_ends_at_its_time_limit(still_push: Path, models: dict[str, Path],
                                                                     ros_env) -> None:
    """Before the first sighting the node waits; once the episode runs, its time runs on while the
    node holds (the arm may be what hides the cube), and it ends judged on the last estimate."""
    calls = []

    def detect(rgb: Any, depth: Any, cam_to_world: Any = None, **kwargs: Any) -> Any:
        calls.append(1)
        seen = 3 <= len(calls) < 8  # nothing at first, then the cube for a few frames, then never again
        cube = np.array(GOAL) if seen else np.full(3, np.nan)  # seen on the goal: a success
        return detections({"cube": cube, "target": np.full(3, np.nan)}, {"cube": 0.9 if seen else 0.0,
                                                                         "target": 0.0})

    probe = Probe()
    robot = RobotAndCamera(probe)
    node = make_node(still_push, models["push"], episodes=1, episode_length_s=1.0, end_on_success=False)
    replace_detect(node, detect)
    run = NodeThread(node).start()
    try:
        run.thread.join(20)
        assert not run.thread.is_alive(), "the episode never ended after the cube was lost"
    finally:
        run.close()
        robot.close()
        probe.close()
    assert run.error is None and run.result == 0, run.error
    assert node.outcomes == [True]  # judged on the last estimate: the cube on the goal
    assert node.perception_holds >= 20 - 5  # most of the episode's 20 steps were held


def test_perception_models_that_do_not_fit_are_refused_before_the_node_starts(
        still_push: Path, models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    import robot_rl_ros.policy_node as node_module
    from robot_rl.cli.deploy import main

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the node joined the network before refusing the perception model")

    monkeypatch.setattr(node_module, "make_transport", no_network)
    refusals = {
        "lift": "was trained for task 'panda_lift', not 'panda_push'",
        "wrist": "was trained on camera 'wrist', not 'front'",
        "small": "reads 64x64 images (HxW), the camera gives 128x128",
    }
    for name, message in refusals.items():
        with pytest.raises(ValueError, match=re.escape(f"the perception model {models[name]} {message}")):
            make_node(still_push, models[name])
        assert main(["--robot", str(ROBOT), "--policy", str(still_push), "--perception", str(models[name]),
                     "--fake-arm", "--target", *map(str, GOAL)]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match="panda_push policies act on the cube the camera sees: give a perception "
                                         "model .*perception-train --task panda_push"):
        make_node(still_push, "")
    assert main(["--robot", str(ROBOT), "--policy", str(still_push), "--fake-arm"]) == 2
    assert "give a perception model" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="perception model not found"):
        make_node(still_push, tmp_path / "missing.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="broken.pt"):
        make_node(still_push, broken)


def test_a_camera_without_depth_stops_the_node_naming_the_topic(still_push: Path, models: dict[str, Path],
                                                                processes) -> None:
    probe = Probe()
    robot = RobotAndCamera(probe, depth=False)
    try:
        node = processes.start("robot_rl_ros.policy_node", "--ros-args", "-p", f"robot:={ROBOT}",
                               "-p", f"policy:={still_push}", "-p", f"perception:={models['push']}",
                               "-p", f"target:={list(GOAL)}", "-p", "camera_wait_s:=3.0")
        assert node.wait(90) == 2
    finally:
        robot.close()
        probe.close()
    log = processes.output(node)
    assert f"error: no depth image on {T.depth} within 3 s" in log, log[-2000:]
    assert T.image not in log.split("error:")[-1].split(";")[0]  # colour and camera info did arrive


def test_push_policy_metadata_matches_the_builder(still_push: Path) -> None:
    from robot_rl.training.export import load_policy

    _, meta = load_policy(still_push)
    assert {k: meta["task_config"][k] for k in PUSH} == PUSH
    assert (meta["observation_dim"], meta["action_dim"]) == (33, 3)


def test_deploy_plans_the_push_scene_and_the_perception_model(still_push: Path, models: dict[str, Path]) -> None:
    import argparse

    from robot_rl.cli.deploy import add_arguments, plan
    from robot_rl_sim.constants import panda

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--robot", str(ROBOT), "--policy", str(still_push), "--perception", str(models["push"]),
                              "--fake-arm", "--target", *map(str, GOAL), "--param", "fake_arm.cube:=[0.5, 0.0]"])
    commands = dict(plan(args))
    fake, node = " ".join(commands["fake_arm"]), " ".join(commands["policy_node"])
    assert "scene:=panda/scene_push.xml" in fake and "cube:=[0.5, 0.0]" in fake
    assert f"initial_arm:={list(panda.TABLE_READY_QPOS)}" in fake and "cube_range:=[0.4, -0.15, 0.6, 0.15]" in fake
    assert f"target:={list(GOAL)}" in fake
    assert f"perception:={models['push'].resolve()}" in node
