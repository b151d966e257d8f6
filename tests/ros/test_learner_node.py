"""Fine-tuning on the robot: the learner node's buffers (interventions in both), the weights
message (exact round trip, refused when it does not fit the running policy), and the loop on the
fake arm: the policy node runs the weights the learner publishes."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ros_helpers import Stop, wait_for

from robot_rl_ros import messages as M
from robot_rl_ros import weights as W
from robot_rl_ros.config import load_robot
from robot_rl_ros.transition import Transition, to_message

pytestmark = pytest.mark.ros

ROBOT = Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml"
CONFIG = load_robot(ROBOT)
HIDDEN = (64, 64)


def sac_actor(hidden: tuple[int, ...] = HIDDEN, seed: int = 0):
    from robot_rl.algorithms.replay import FixedNorm
    from robot_rl.algorithms.sac import SquashedGaussianActor

    torch.manual_seed(seed)
    return SquashedGaussianActor(FixedNorm(torch.randn(32) * 0.1, torch.rand(32) + 0.5), 32, 8, hidden)


@pytest.fixture(scope="module")
def sac_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A panda_reach SAC actor exported as offline training and fine-tuning export theirs."""
    from robot_rl.offline.trainer import export_actor

    out = tmp_path_factory.mktemp("sac_policy") / "policy.pt"
    return export_actor(sac_actor(), out, "panda_reach", "policy", "tests")


def learner_config(tmp_path: Path, warmup: int) -> Path:
    path = tmp_path / "learner.yaml"
    path.write_text(f"task: panda_reach\nalgo: sac\nroot: {tmp_path / 'runs'}\n"
                    f"sac: {{ensemble: 2, subset: 2, utd: 1, warmup: {warmup}, random_steps: 0, buffer_size: 1000}}\n"
                    f"net: {{hidden: {list(HIDDEN)}, batch_size: 16}}\nbudget: {{env_steps: 100000}}\n")
    return path


class NoNetwork:
    """Stands in for a transport: keeps what is published, delivers nothing."""

    backend = "none"

    def __init__(self) -> None:
        self.published: list[tuple[str, object]] = []

    def publisher(self, topic: str, ros_type: str, qos: object = None) -> SimpleNamespace:
        return SimpleNamespace(publish=lambda msg: self.published.append((topic, msg)))

    def subscribe(self, *args: object, **kwargs: object) -> None:
        pass

    def close(self) -> None:
        pass


def record(episode: int, step: int, intervention: bool, done: bool = False, success: bool = False) -> Transition:
    obs = np.full(32, 10.0 * episode + step)
    policy_action = np.full(8, 0.1 * step)
    action = -policy_action if intervention else policy_action
    return Transition(episode=episode, step=step, time=0.0, observation=obs, state=np.zeros(8),
                      policy_action=policy_action, action=action, intervention=intervention, reward=float(success),
                      done=done, success=success, hold=False)


def test_interventions_reach_both_buffers_and_weights_follow_warmup(sac_policy: Path, tmp_path: Path) -> None:
    from robot_rl_ros.learner_node import LearnerNode, LearnerNodeParams

    params = LearnerNodeParams(robot=str(ROBOT), policy=str(sac_policy), config=str(learner_config(tmp_path, 4)),
                               publish_every=2, checkpoint_every=0)
    network = NoNetwork()
    node = LearnerNode(params, CONFIG, "learner_node", transport=network)
    # Episode 0 ends in success (terminal), episode 1 at the time limit (not terminal).
    stream = [record(0, 0, False), record(0, 1, True), record(0, 2, False), record(0, 3, True, True, True),
              record(1, 0, False), record(1, 1, False, True, False)]
    for r in stream:
        node.on_transition(to_message(r))  # the subscription callback: decode and queue only
    assert len(node.learner.online) == 0
    published = None  # the actor when the first weights went out
    while not node.records.empty():
        node.process(node.records.get())
        if network.published and published is None:
            published = W.exported_names(node.learner.sac.actor)

    learner = node.learner
    assert len(learner.online) == 6 and node.env_steps == 6
    assert learner.online.obs[:6, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 10.0, 11.0]
    assert learner.online.next_obs[:6, 0].tolist() == [1.0, 2.0, 3.0, 3.0, 11.0, 11.0]  # the last: its own
    assert learner.online.done[:6].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    # Only the intervened steps, with the person's action, are demos as well.
    assert len(learner.demos) == 2
    assert learner.demos.obs[:2, 0].tolist() == [1.0, 3.0]
    np.testing.assert_allclose(learner.demos.action[:2].numpy(), [np.full(8, -0.1), np.full(8, -0.3)], rtol=1e-6)
    assert learner.demos.done[:2].tolist() == [0.0, 1.0]

    # From warmup (4 steps) on, one update per step; the first weights go out with the first
    # update, the next publish_every (2) steps later.
    assert node.updates == 3
    assert [topic for topic, _ in network.published] == [CONFIG.topics.weights] * 2
    sent = W.from_message(M.decode(M.encode(network.published[0][1]), M.FLOAT32_ARRAY))
    assert sent.version == 1
    for name, value in published.items():
        np.testing.assert_array_equal(sent.tensors[name], value)

    node.close()
    (checkpoint,) = (node.run_dir / "checkpoints").glob("model_6.pt")
    assert torch.load(checkpoint, weights_only=False)["weights_version"] == 2
    from robot_rl_ros.policy_node import load_checked_policy

    saved, meta, _ = load_checked_policy(node.run_dir / "policy.pt", CONFIG)
    obs = torch.randn(3, 32)
    with torch.no_grad():
        np.testing.assert_allclose(saved(obs).numpy(), learner.sac.actor(obs).clamp(-1, 1).numpy(), atol=1e-6)
    assert meta["task"] == "panda_reach" and meta["weights_version"] == 2


def test_a_lost_record_drops_only_the_transition_it_would_complete() -> None:
    from robot_rl.offline.finetune import TransitionStream

    stream = TransitionStream()
    out = [t for r in (record(0, 0, False), record(0, 1, False), record(0, 3, False), record(0, 4, False, True))
           for t in stream.push(r)]
    # Step 1's next observation (step 2) never arrived; a done record leaves at once.
    assert [(t[0][0], t[3][0]) for t in out] == [(0.0, 1.0), (3.0, 4.0), (4.0, 4.0)]
    assert stream.dropped == 1 and stream.flush() == []


def test_weights_round_trip_and_a_policy_that_does_not_fit_keeps_its_own(sac_policy: Path, ros_env) -> None:
    from robot_rl_ros.policy_node import PolicyNode, PolicyNodeParams

    actor = sac_actor(seed=1)
    weights = W.PolicyWeights(7, M.now_ns(), W.exported_names(actor))
    raw = M.encode(W.to_message(weights))
    back = W.from_message(M.decode(raw, M.FLOAT32_ARRAY))
    assert back.version == 7 and back.stamp_ns == weights.stamp_ns
    assert list(back.tensors) == list(weights.tensors)
    for name, value in weights.tensors.items():
        np.testing.assert_array_equal(back.tensors[name], value)

    node = PolicyNode(PolicyNodeParams(robot=str(ROBOT), policy=str(sac_policy), target=(0.5, 0.1, 0.3),
                                       learn=True, backend="cyclone"), CONFIG, "policy_node")
    try:
        obs = np.random.default_rng(0).normal(size=32).astype(np.float32)
        before = node.act(obs)
        wrong = W.PolicyWeights(8, M.now_ns(), W.exported_names(sac_actor(hidden=(32, 32))))
        node.on_weights(M.decode(M.encode(W.to_message(wrong)), M.FLOAT32_ARRAY))
        node.apply_weights()
        assert node.weights_version == 0
        np.testing.assert_array_equal(node.act(obs), before)

        node.on_weights(M.decode(raw, M.FLOAT32_ARRAY))
        np.testing.assert_array_equal(node.act(obs), before)  # the swap waits for the loop
        node.apply_weights()
        assert node.weights_version == 7
        with torch.no_grad():
            expected = actor(torch.from_numpy(obs[None])).clamp(-1, 1).numpy()[0]
        np.testing.assert_allclose(node.act(obs), expected, atol=1e-6)
    finally:
        node.close()


def test_learning_needs_a_policy_whose_weights_can_be_replaced(reach_policy: Path, ros_env) -> None:
    from robot_rl_ros.policy_node import PolicyNode, PolicyNodeParams

    with pytest.raises(ValueError, match="cannot take learned weights: its parameters .*norm.var"):
        PolicyNode(PolicyNodeParams(robot=str(ROBOT), policy=str(reach_policy), target=(0.5, 0.1, 0.3),
                                    learn=True, backend="cyclone"), CONFIG, "policy_node")


def test_policy_node_runs_the_weights_the_learner_publishes_on_the_fake_arm(sac_policy: Path, processes,
                                                                            tmp_path: Path) -> None:
    from robot_rl_ros.learner_node import LearnerNode, LearnerNodeParams
    from robot_rl_ros.policy_node import PolicyNode, PolicyNodeParams

    processes.start("robot_rl_ros.fake_arm", "--ros-args", "-p", f"robot:={ROBOT}", "-p", "camera_hz:=0.0")
    learner = LearnerNode(LearnerNodeParams(robot=str(ROBOT), policy=str(sac_policy), backend="cyclone",
                                            config=str(learner_config(tmp_path, 20)), publish_every=10,
                                            checkpoint_every=0), CONFIG, "learner_node")
    policy = PolicyNode(PolicyNodeParams(robot=str(ROBOT), policy=str(sac_policy), target=(0.5, 0.1, 0.3),
                                         rate_hz=50.0, episode_length_s=0.5, learn=True, backend="cyclone"),
                        CONFIG, "policy_node")
    stop = Stop()
    threads = [threading.Thread(target=node.spin, args=(stop,), daemon=True) for node in (learner, policy)]
    obs = np.random.default_rng(0).normal(size=32).astype(np.float32)
    before = policy.act(obs)
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: policy.weights_version >= 2, 30, "the policy node to run the learner's second weights")
        assert learner.version >= policy.weights_version and learner.updates > 0
        assert 0 < policy.weights_latency_s < 5.0, policy.weights_latency_s
        assert np.abs(policy.act(obs) - before).max() > 1e-4
    finally:
        stop.event.set()
        for thread in threads:
            thread.join(10)
        policy.close()
        learner.close()
    assert (learner.run_dir / "policy.pt").is_file() and (learner.run_dir / "metrics.csv").read_text().count("\n") >= 2


def test_deploy_with_learn_starts_the_learner_before_a_learning_policy_node(sac_policy: Path, reach_policy: Path,
                                                                           tmp_path: Path, ros_env,
                                                                           capsys: pytest.CaptureFixture) -> None:
    import argparse

    from robot_rl.cli.deploy import add_arguments, main, plan

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = learner_config(tmp_path, warmup=10)
    nodes = plan(parser.parse_args(["--robot", str(ROBOT), "--policy", str(sac_policy), "--fake-arm",
                                    "--learn", str(config), "--learn-output", str(tmp_path / "runs")]))
    names = [name for name, _ in nodes]
    assert names == ["fake_arm", "learner_node", "policy_node"]
    learner, policy = dict(nodes)["learner_node"], dict(nodes)["policy_node"]
    assert f"config:={config.resolve()}" in learner and f"output:={(tmp_path / 'runs').resolve()}" in learner
    assert "learn:=True" in policy and not any(arg.startswith("resume:=") for arg in learner)

    # Refused before anything starts: a PPO policy cannot take learned weights, --resume needs --learn,
    # and a settings file that does not load.
    assert main(["--robot", str(ROBOT), "--policy", str(reach_policy), "--learn", str(config)]) == 2
    assert "cannot take learned weights" in capsys.readouterr().err
    assert main(["--robot", str(ROBOT), "--policy", str(sac_policy), "--resume", str(tmp_path)]) == 2
    assert "--resume continues a learner run; give --learn CONFIG too" in capsys.readouterr().err
    assert main(["--robot", str(ROBOT), "--policy", str(sac_policy), "--learn", str(tmp_path / "none.yaml")]) == 2
    assert "launch file not found" in capsys.readouterr().err


def test_records_still_queued_at_stop_reach_the_saved_buffers(sac_policy: Path, tmp_path: Path) -> None:
    from robot_rl_ros.learner_node import LearnerNode, LearnerNodeParams

    params = LearnerNodeParams(robot=str(ROBOT), policy=str(sac_policy), config=str(learner_config(tmp_path, 2)),
                               publish_every=1, checkpoint_every=0)
    network = NoNetwork()
    node = LearnerNode(params, CONFIG, "learner_node", transport=network)
    for r in [record(0, 0, False), record(0, 1, True), record(0, 2, False, True, True)]:
        node.on_transition(to_message(r))
    stop = Stop()
    stop.event.set()  # stopped before the loop took a single record
    assert node.spin(stop) == 0
    assert node.records.empty() and node.env_steps == 3
    assert (len(node.learner.online), len(node.learner.demos)) == (3, 1)
    assert node.updates == 0 and not network.published  # stored, not learned from
    node.close()
    replay = torch.load(node.run_dir / "checkpoints" / "replay.pt", weights_only=False)
    assert replay["env_steps"] == 3 and replay["online"]["size"] == 3 and replay["demos"]["size"] == 1
