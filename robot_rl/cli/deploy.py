"""``robot-rl deploy``: run an exported policy on a robot (or the simulated fake arm) over ROS 2
topics, without ROS installed. Starts the same nodes ``launch/ros/*.launch.py`` starts.

    robot-rl deploy --robot real/config/panda.yaml --policy policy.pt --fake-arm --target 0.5 0.1 0.3
    robot-rl deploy --robot real/config/panda.yaml --policy policy.pt --record runs/deploy --episodes 10
    robot-rl deploy --robot real/config/panda.yaml --policy policy.pt --fake-arm \
        --learn launch/offline/panda_reach_robot_rlpd.yaml       # fine-tune on the robot while it runs
    robot-rl deploy --robot real/config/panda.yaml --policy push.pt --perception perception.pt \
        --fake-arm --target 0.5 0.15 0.0 --episodes 1          # push: the cube seen by the camera

Everything that can be checked is checked before a node starts: the robot file, the policy
(task, observation and action sizes), the perception model push and lift policies need (task,
camera, image size), with ``--record`` that the directory is writable, and with ``--learn`` that
the settings load and the policy's weights can be replaced by learned ones. With ``--fake-arm``
a push or lift policy gets its task's scene (cube, target marker, start pose).
Ctrl-C, SIGTERM or SIGHUP stops every node, the policy node first (it leaves the arm holding its
last safe command), then the arm, the learner (it writes its checkpoint) and the recorder (it
finishes its files); a node that does not stop in time is killed. The nodes run in their own process
group and also stop when deploy itself dies (even by SIGKILL). With ``--episodes K`` deploy ends by
itself; a fixed ``--target`` is one episode, after which the arm holds at the goal. At the end
``summary.json`` (episodes, successes, success rate, median control-loop latency including
perception) goes into the recording's folder with ``--record``, else to standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NODES = ("fake_arm", "recorder", "learner_node", "policy_node")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", required=True, help="robot config YAML, e.g. real/config/panda.yaml")
    parser.add_argument("--policy", required=True, help="exported policy file (robot-rl export ... --out policy.pt)")
    parser.add_argument("--perception", metavar="MODEL",
                        help="perception model (robot-rl perception-train) finding the cube in the camera's colour "
                             "and depth images; needed by panda_push and panda_lift policies")
    parser.add_argument("--fake-arm", action="store_true", help="also start the simulated arm (MuJoCo)")
    parser.add_argument("--record", metavar="DIR",
                        help="record a rosbag2 and a LeRobot v3 dataset into DIR/<date>_<time>/")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage (default mcap)")
    parser.add_argument("--target", type=float, nargs="+", metavar="X",
                        help="goals x y z [x y z ...] in metres, one per episode (default: the target topic)")
    parser.add_argument("--episodes", type=int, default=0, help="stop after this many episodes (default: run on)")
    parser.add_argument("--learn", metavar="CONFIG",
                        help="also fine-tune the policy from the robot's steps with SAC/RLPD (learner_node): an "
                             "offline launch YAML such as launch/offline/panda_reach_robot_rlpd.yaml; the policy "
                             "must come from robot-rl offline-train or finetune")
    parser.add_argument("--learn-output", metavar="DIR", default="",
                        help="root of the learner's run directory (default: the config's root)")
    parser.add_argument("--resume", metavar="RUN_DIR", default="",
                        help="with --learn: continue a learner run (its directory or a checkpoint)")
    parser.add_argument("--camera-hz", type=float, default=30.0, help="fake arm camera rate; 0 turns it off")
    parser.add_argument("--backend", choices=("auto", "cyclone", "rclpy"), default="auto", help="ROS 2 transport")
    parser.add_argument("--param", action="append", default=[], metavar="NODE.NAME:=VALUE",
                        help="extra node parameter, e.g. fake_arm.drop_rate:=0.1 (repeatable)")


def _node_command(node: str, params: dict[str, object]) -> list[str]:
    command = [sys.executable, "-m", f"robot_rl_ros.{node}", "--ros-args"]
    for name, value in params.items():
        command += ["-p", f"{name}:={value}"]
    return command


def _extra_params(items: list[str]) -> dict[str, dict[str, str]]:
    extra: dict[str, dict[str, str]] = {node: {} for node in NODES}
    for item in items:
        key, sep, value = item.partition(":=")
        node, dot, name = key.partition(".")
        if not sep or not dot or node not in extra:
            raise ValueError(f"--param {item!r} must look like NODE.NAME:=VALUE with NODE one of {', '.join(NODES)}")
        extra[node][name] = value
    return extra


def plan(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Check everything, then return the node commands in start order."""
    try:
        from robot_rl_ros.config import load_robot
        from robot_rl_ros.policy_node import load_checked_policy
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(f"deploy needs the ROS 2 package ({error}); install it with "
                                  "pip install -e '.[ros]' (robot_rl_ros lives in real/)") from None
    from robot_rl_ros.policy_node import check_perception

    robot = str(Path(args.robot).resolve())
    config = load_robot(robot)
    module, metadata, task = load_checked_policy(args.policy, config)
    check_perception(task, args.perception or "", config)  # a model that does not fit stops here
    if args.resume and not args.learn:
        raise ValueError("--resume continues a learner run; give --learn CONFIG too")
    if args.learn:
        from robot_rl.configs import load
        from robot_rl.configs.offline import OfflineConfig
        from robot_rl_ros.weights import check_learnable

        load(OfflineConfig, args.learn)  # a bad settings file stops here, before any node starts
        check_learnable(module, args.policy, "deploy without --learn")
    if args.target and len(args.target) % 3:
        raise ValueError(f"--target takes x y z per goal; got {len(args.target)} numbers")
    extra = _extra_params(args.param)
    common = {"robot": robot, "backend": args.backend}
    nodes = []
    if args.fake_arm:
        fake = {**common, "camera_hz": args.camera_hz}
        if args.target:
            fake["target"] = list(args.target[:3])
        if task.perceives:
            fake.update(_task_scene(metadata))
        nodes.append(("fake_arm", _node_command("fake_arm", {**fake, **extra["fake_arm"]})))
    policy = {**common, "policy": str(Path(args.policy).resolve()), "episodes": args.episodes}
    if args.perception:
        policy["perception"] = str(Path(args.perception).resolve())
    if args.target:
        policy["target"] = list(args.target)
    if args.record:
        from robot_rl_ros.recorder import check_writable

        out = check_writable(Path(args.record).resolve())
        rec = {**common, "output": str(out), "storage": args.storage, "fps": 1.0 / float(metadata["control_dt"]),
               "task": metadata.get("goal", "")}
        nodes.append(("recorder", _node_command("recorder", {**rec, **extra["recorder"]})))
        policy["wait_for_recorder_s"] = 60.0  # no moving before the recorder listens
    if args.learn:
        learner = {**common, "policy": policy["policy"], "config": str(Path(args.learn).resolve())}
        if args.learn_output:
            learner["output"] = str(Path(args.learn_output).resolve())
        if args.resume:
            learner["resume"] = str(Path(args.resume).resolve())
        nodes.append(("learner_node", _node_command("learner_node", {**learner, **extra["learner_node"]})))
        policy["learn"] = True
    nodes.append(("policy_node", _node_command("policy_node", {**policy, **extra["policy_node"]})))
    return nodes


def _task_scene(metadata: dict) -> dict[str, object]:
    """Fake-arm parameters that set up a cube task's scene as in training: its MJCF, the arm's
    start pose and the cube's start range (the policy's task config over the task's defaults)."""
    import dataclasses

    import robot_rl_sim.tasks  # noqa: F401  (registers the tasks)
    from robot_rl.envs.task import TASKS

    task = TASKS.get(metadata["task"])
    cfg = {**dataclasses.asdict(task.config_class()), **metadata.get("task_config", {})}
    scene = {"scene": task.scene, "initial_arm": list(cfg["initial_arm"])}
    if "cube_low" in cfg:
        scene["cube_range"] = [*cfg["cube_low"], *cfg["cube_high"]]
    return scene


STOP_ORDER = ("policy_node", "fake_arm", "learner_node", "recorder")
"""The policy first (no new commands), then the arm, the learner (it checkpoints what it has
learned) and the recorder last (it flushes what it has)."""
STOP_TIMEOUT_S = {"policy_node": 10.0, "fake_arm": 10.0, "learner_node": 60.0, "recorder": 60.0}
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop(procs: dict[str, subprocess.Popen]) -> list[str]:
    """Stop every node (SIGINT to its process group, a bounded wait, then SIGKILL); the names of
    those that had to be killed."""
    killed = []
    for name in sorted(procs, key=STOP_ORDER.index):
        proc = procs[name]
        if proc.poll() is None:
            _signal_group(proc, signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT_S[name])
            except subprocess.TimeoutExpired:
                killed.append(name)
        _signal_group(proc, signal.SIGKILL)  # whatever the node started and left behind, too
        proc.wait()
    return killed


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):  # the group is gone (or only a zombie is left)
        pass


def _recordings(root: Path, before: set[Path]) -> str:
    """What the recorder wrote in this run, as a phrase for the last line."""
    from robot_rl.data.lerobot import read_info

    runs = sorted(set(root.iterdir()) - before) if root.is_dir() else []
    if not runs:
        return f"nothing recorded in {root}"
    try:
        episodes = read_info(runs[-1] / "lerobot")["total_episodes"]
    except (OSError, ValueError, KeyError):
        episodes = 0
    return f"{episodes} episode(s) recorded in {runs[-1]}"


def _add_summary(nodes: list[tuple[str, list[str]]], path: Path) -> list[tuple[str, list[str]]]:
    return [(name, command + ["-p", f"summary:={path}"] if name == "policy_node" else command)
            for name, command in nodes]


def _report(summary: Path, record: Path | None, before: set[Path]) -> str:
    """Put the policy node's summary into the recording (or print it); a phrase saying where."""
    if not summary.is_file():
        return "no summary (the policy node wrote none)"
    text = summary.read_text()
    runs = sorted(set(record.iterdir()) - before) if record is not None and record.is_dir() else []
    if runs:
        (runs[-1] / "summary.json").write_text(text)
        return f"summary in {runs[-1] / 'summary.json'}"
    print(json.dumps(json.loads(text)))
    return "summary printed"


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="robot_rl_deploy_") as tmp:
        return _run(args, Path(tmp) / "summary.json")


def _run(args: argparse.Namespace, summary: Path) -> int:
    nodes = _add_summary(plan(args), summary)
    record = Path(args.record).resolve() if args.record else None
    before = set(record.iterdir()) if record is not None else set()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    env = {**os.environ, "ROBOT_RL_DEPLOY_PID": str(os.getpid())}  # robot_rl_ros.node.PARENT_ENV
    procs: dict[str, subprocess.Popen] = {}
    failed = None
    try:
        for name, command in nodes:
            if received:
                break
            print(f"starting {name}: {' '.join(command)}", file=sys.stderr)
            # Their own session: a terminal's Ctrl-C reaches deploy only, which stops them in order.
            procs[name] = subprocess.Popen(command, env=env, start_new_session=True)
        while failed is None and not received:
            time.sleep(0.1)
            for name, proc in procs.items():
                code = proc.poll()
                if code is not None and (name != "policy_node" or code != 0):
                    failed = (name, code)
                    break
            if "policy_node" in procs and procs["policy_node"].poll() == 0:
                break
    finally:
        # A second signal while the nodes stop changes nothing: every wait below is bounded.
        killed = _stop(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    saved = _recordings(record, before) if record is not None else "nothing recorded (no --record)"
    saved += "; " + _report(summary, record, before)
    forced = f"; {', '.join(killed)} did not stop within its time and was killed" if killed else ""
    if failed is not None:
        raise RuntimeError(f"{failed[0]} exited with code {failed[1]} (its error is printed above); all nodes "
                           f"stopped; {saved}{forced}")
    why = f"stopped by {signal.Signals(received[0]).name}" if received else "the policy node finished its episodes"
    _say(f"robot-rl deploy: {why}; all nodes stopped; {saved}{forced}")
    return 128 + received[0] if received else 0


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr)
    except OSError:  # the terminal that would show it is gone (SIGHUP)
        pass


def main(argv: list[str] | None = None) -> int:
    """``python -m robot_rl.cli.deploy ...`` (the same as ``robot-rl deploy ...``)."""
    parser = argparse.ArgumentParser(prog="robot-rl deploy", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, KeyError, FileNotFoundError, ModuleNotFoundError, RuntimeError) as error:
        _say(f"robot-rl deploy: error: {error}")
        return 2
    except KeyboardInterrupt:  # before any node started
        _say("robot-rl deploy: interrupted before any node started; nothing to stop")
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
