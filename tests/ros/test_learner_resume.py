"""Resuming the learner node and the weights version in transition records: a resumed learner
continues its step and weights version counters, buffers and metrics in the same run directory
and learns exactly as the learner it continues; checkpoints that do not fit are refused with one
clear error; the policy node stamps its records with the weights version that acted and the
recorder keeps it as a dataset column."""

from __future__ import annotations

import csv
import dataclasses
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_learner_node import CONFIG, ROBOT, NoNetwork, Stop, learner_config, record, sac_actor

from robot_rl_ros import messages as M
from robot_rl_ros import weights as W
from robot_rl_ros.transition import from_message, to_message

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def sac_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from robot_rl.offline.trainer import export_actor

    out = tmp_path_factory.mktemp("sac_policy") / "policy.pt"
    return export_actor(sac_actor(), out, "panda_reach", "policy", "tests")


def learner(policy: Path, config: Path, network: NoNetwork, **params: object):
    from robot_rl_ros.learner_node import LearnerNode, LearnerNodeParams

    values = {"publish_every": 2, "checkpoint_every": 0, **params}
    return LearnerNode(LearnerNodeParams(robot=str(ROBOT), policy=str(policy), config=str(config), **values),
                       CONFIG, "learner_node", transport=network)


def feed(node, records) -> None:
    for r in records:
        node.on_transition(to_message(r))
    while not node.records.empty():
        node.process(node.records.get())


def first_run(version: int = 0):
    """Two episodes; the policy ran ``version`` in all of them."""
    return [dataclasses.replace(r, weights_version=version) for r in (
        record(0, 0, False), record(0, 1, True), record(0, 2, False), record(0, 3, True, True, True),
        record(1, 0, False), record(1, 1, False, True, False))]


def second_run(version: int):
    return [dataclasses.replace(r, weights_version=version) for r in (
        record(2, 0, False), record(2, 1, True), record(2, 2, False), record(2, 3, False), record(2, 4, False, True))]


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_resumed_learner_continues_counters_buffers_and_learning_in_its_run_directory(
        sac_policy: Path, tmp_path: Path) -> None:
    config = learner_config(tmp_path, 4)
    first = learner(sac_policy, config, NoNetwork())
    feed(first, first_run())
    assert (first.env_steps, first.updates, first.version) == (6, 3, 2)
    first.close()  # as on Ctrl-C: model_6.pt, replay.pt, policy.pt
    run_dir = first.run_dir
    config_yaml = (run_dir / "config.yaml").read_bytes()
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"model_6.pt", "replay.pt"}
    rows = metrics(run_dir)
    # Records 0-3 ran version 0 while the learner had 0; records 4-5 version 0 while it had 1.
    assert [(r["weights/version"], r["weights/staleness"]) for r in rows] == [("1", "0.0"), ("2", "1.0")]

    network = NoNetwork()
    resumed = learner(sac_policy, config, network, resume=str(run_dir))
    assert resumed.run_dir == run_dir
    assert (resumed.env_steps, resumed.updates) == (6, 3)
    # The restored actor goes out at once, one version after the last one the policy node saw.
    (topic, msg), = network.published
    sent = W.from_message(M.decode(M.encode(msg), M.FLOAT32_ARRAY))
    assert resumed.version == sent.version == 3
    for name, value in W.exported_names(first.algo.actor).items():
        np.testing.assert_array_equal(sent.tensors[name], value)
    for name in ("online", "demos"):
        ours, theirs = getattr(resumed.learner, name), getattr(first.learner, name)
        assert (len(ours), ours.position) == (len(theirs), theirs.position)
        for field in ("obs", "action", "reward", "next_obs", "done"):
            torch.testing.assert_close(getattr(ours, field), getattr(theirs, field), rtol=0, atol=0)
    assert len(resumed.learner.demos) == 2  # the person's two corrections

    # Both learn from the same next records: exactly the same networks, temperature and moments.
    first.metrics = SimpleNamespace(write=lambda row: None)  # its rows would land in the shared metrics.csv
    feed(first, second_run(2))
    feed(resumed, second_run(3))
    assert (resumed.env_steps, resumed.updates) == (first.env_steps, first.updates) == (11, 8)
    assert resumed.version == first.version + 1
    torch.testing.assert_close(resumed.algo.state_dict(), first.algo.state_dict(), rtol=0, atol=0)

    resumed.close()
    assert (run_dir / "config.yaml").read_bytes() == config_yaml
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"model_6.pt", "model_11.pt", "replay.pt"}
    saved = torch.load(run_dir / "checkpoints" / "model_11.pt", weights_only=True)
    assert (saved["env_steps"], saved["updates"], saved["weights_version"]) == (11, 8, resumed.version)
    rows = metrics(run_dir)
    assert [int(r["env_steps"]) for r in rows] == [4, 6, 6, 8, 10]  # appended; the second 6: the resume's publish
    assert [int(r["weights/version"]) for r in rows] == [1, 2, 3, 4, 5]
    assert [r["weights/staleness"] for r in rows[2:]] == ["", "0.0", "1.0"]


def test_resuming_an_older_checkpoint_starts_a_new_run_and_says_the_buffers_are_empty(
        sac_policy: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = learner_config(tmp_path, 4)
    first = learner(sac_policy, config, NoNetwork(), checkpoint_every=3)
    feed(first, first_run())
    first.close()
    older = first.run_dir / "checkpoints" / "model_3.pt"
    assert older.is_file()

    network = NoNetwork()
    with caplog.at_level(logging.INFO):
        resumed = learner(sac_policy, config, network, resume=str(older))
    assert resumed.run_dir != first.run_dir and (resumed.run_dir / "config.yaml").is_file()
    assert (resumed.env_steps, resumed.updates, resumed.version) == (3, 0, 0)
    assert not network.published  # no update before step 3: nothing learned to send
    assert len(resumed.learner.online) == 0 and len(resumed.learner.demos) == 0
    assert "is not the run's newest checkpoint" in caplog.text
    assert "holds the buffers at step 6, the checkpoint is of step 3): the online buffer starts empty" \
        in caplog.text
    resumed.close()

    # Without replay.pt (save_replay:=false): counters and networks, empty buffers, said so.
    other = learner(sac_policy, config, NoNetwork(), save_replay=False)
    feed(other, first_run())
    other.close()
    assert not (other.run_dir / "checkpoints" / "replay.pt").exists()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = learner(sac_policy, config, NoNetwork(), resume=str(other.run_dir))
    assert again.run_dir == other.run_dir and (again.env_steps, again.version) == (6, 3)
    assert len(again.learner.online) == 0
    assert "no replay buffers to resume with" in caplog.text and "updates resume after sac.warmup" in caplog.text
    again.close()


def test_a_checkpoint_that_does_not_fit_is_refused_before_anything_is_written(sac_policy: Path,
                                                                               tmp_path: Path) -> None:
    from robot_rl.training.checkpoints import CheckpointError

    config = learner_config(tmp_path, 4)
    first = learner(sac_policy, config, NoNetwork())
    feed(first, first_run())
    first.close()
    checkpoint = first.run_dir / "checkpoints" / "model_6.pt"
    payload = torch.load(checkpoint, weights_only=True)
    del payload["checksum"]  # the altered copies below stand for checkpoints written that way
    runs = tmp_path / "runs" / "panda_reach"
    before = sorted(runs.iterdir())

    def refused(error: type[Exception], match: str, resume: Path, config: Path = config) -> None:
        with pytest.raises(error, match=match):
            learner(sac_policy, config, NoNetwork(), resume=str(resume))
        assert sorted(runs.iterdir()) == before  # no run directory was started

    refused(FileNotFoundError, "resume: .*missing does not exist; give a learner run directory", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    refused(FileNotFoundError, "has no checkpoints/model_<steps>.pt", tmp_path / "empty")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    refused(CheckpointError, "garbage.pt is truncated or not a torch file .*; give the run directory",
            tmp_path / "garbage.pt")
    torch.save({"format": "robot_rl.ppo/1", "model": {}}, tmp_path / "ppo.pt")
    refused(CheckpointError, r"ppo.pt is not a learner_node checkpoint \(format 'robot_rl.ppo/1', algo None\); "
            "resume:= takes a learner run directory", tmp_path / "ppo.pt")
    refused(CheckpointError, "policy.pt is not a (learner_node checkpoint|readable checkpoint)",
            first.run_dir / "policy.pt")
    torch.save({**payload, "task": "panda_push"}, tmp_path / "push.pt")
    refused(CheckpointError, "push.pt fine-tuned 'panda_push' but .*policy.pt runs 'panda_reach'", tmp_path / "push.pt")

    # The config asks for other networks than the checkpoint holds.
    wider = tmp_path / "wider.yaml"
    wider.write_text(config.read_text().replace("hidden: [64, 64]", "hidden: [128, 128]"))
    refused(CheckpointError, r"model_6.pt holds networks with net.hidden \[64, 64\] but .*wider.yaml asks for "
            r"net.hidden \[128, 128\]; set them in .*wider.yaml to the checkpoint's values", checkpoint, wider)
    bigger_ensemble = tmp_path / "ensemble.yaml"
    bigger_ensemble.write_text(config.read_text().replace("ensemble: 2,", "ensemble: 3,"))
    refused(CheckpointError, "holds networks with sac.ensemble 2 but .*ensemble.yaml asks for sac.ensemble 3",
            checkpoint, bigger_ensemble)
    # A checkpoint whose networks differ from what its config says: the tensors are named.
    lying = {**payload, "config": {**payload["config"], "net": {**payload["config"]["net"], "hidden": [128, 128]}}}
    torch.save(lying, tmp_path / "lying.pt")
    refused(CheckpointError, r"lying.pt does not fit this learner: the saved networks differ from these: "
            r"actor.actor.0.0.weight is \[64, 32\] where \[128, 32\] is expected.*; resume with the policy and "
            "config the run used", tmp_path / "lying.pt", wider)


def test_the_policy_node_stamps_each_record_with_the_weights_version_that_acted(sac_policy: Path, ros_env) -> None:
    from robot_rl_ros.policy_node import PolicyNode, PolicyNodeParams

    node = PolicyNode(PolicyNodeParams(robot=str(ROBOT), policy=str(sac_policy), target=(0.5, 0.1, 0.3),
                                       rate_hz=50.0, episode_length_s=0.06, episodes=1, learn=True, teleop=False,
                                       backend="cyclone"), CONFIG, "policy_node")
    sent: list[object] = []
    node.transition_pub = SimpleNamespace(publish=sent.append)
    names = list(CONFIG.arm_joints) + list(CONFIG.gripper_joints)
    node.states.on_message(M.joint_state(names, list(CONFIG.home) + [0.02, 0.02], stamp_ns=M.now_ns()))
    try:
        node.spin(Stop())  # episode 0 with the file's weights
        node.on_weights(W.to_message(W.PolicyWeights(5, M.now_ns(), W.exported_names(sac_actor(seed=2)))))
        node.spin(Stop())  # swapped in before the first step
    finally:
        node.close()
    records = [from_message(m) for m in sent]
    assert [(r.episode, r.weights_version) for r in records] == [(0, 0)] * 3 + [(0, 5)] * 3


def test_the_recorder_keeps_the_weights_version_as_a_dataset_column(ros_env, tmp_path: Path) -> None:
    from robot_rl.data.lerobot import read_frames, read_info
    from robot_rl_ros.recorder import Recorder, RecorderParams

    recorder = Recorder(RecorderParams(robot=str(ROBOT), output=str(tmp_path), images=False, backend="cyclone"),
                        CONFIG, "recorder")
    try:
        for r in [dataclasses.replace(r, weights_version=v) for r, v in zip(first_run(), [0, 0, 1, 1, 2, 2])]:
            recorder.on_transition(r)
    finally:
        recorder.close()
    root = recorder.lerobot_root
    assert read_info(root)["features"]["weights_version"] == {"dtype": "int64", "shape": [1], "names": None}
    assert read_frames(root).to_pydict()["weights_version"] == [0, 0, 1, 1, 2, 2]


def test_a_metrics_file_from_before_staleness_gains_the_column_and_keeps_its_rows(tmp_path: Path) -> None:
    from robot_rl.training.rundir import MetricsLog
    from robot_rl_ros.learner_node import _METRICS

    path = tmp_path / "metrics.csv"
    path.write_text("env_steps,updates,weights/version\n4,1,1\n6,3,2\n")
    MetricsLog.open(path, _METRICS, append=True).write({"env_steps": 8, "updates": 5, "weights/version": 3,
                                                        "weights/staleness": 0.5})
    rows = metrics(tmp_path)
    assert list(rows[0])[:4] == ["env_steps", "updates", "weights/version", "weights/staleness"]
    assert [(r["env_steps"], r["weights/version"], r["weights/staleness"]) for r in rows] == [
        ("4", "1", ""), ("6", "2", ""), ("8", "3", "0.5")]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # no temporary file left
    MetricsLog.open(path, _METRICS, append=False)  # a new run: a fresh file
    assert metrics(tmp_path) == []
