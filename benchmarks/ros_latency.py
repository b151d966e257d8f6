"""ROS 2 transport and control-loop latency on loopback (cyclone backend, no ROS installed).

1. JointState (9 joints) at 500 Hz to an echo process that decodes and re-publishes it:
   round-trip p50/p99 and loss (goal: p99 < 2 ms).
2. 224×224 RGB image at 30 Hz to the echo process, which answers with a small message:
   round-trip p50/p99 (serialise, send, receive, decode).
3. The policy node at 100 Hz against the fake arm: control period p50/p99 and |period − 10 ms|
   p99, from the wall-clock times in its transition records (goal: jitter p99 < 2 ms).
4. Stale state to hold: the fake arm's state freezes (``/fake_arm/freeze``), time until the
   policy node reports holding on ``/safety/holding`` (goal < 0.5 s).

    python benchmarks/ros_latency.py
    python benchmarks/ros_latency.py --policy policy.pt --seconds 20 --out ros_latency.json

Each measurement runs on its own ROS_DOMAIN_ID on 127.0.0.1. Without ``--policy`` an untrained
panda_reach-shaped network is exported (same size and cost as a trained one; the arm barely moves).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
try:
    import robot_rl_ros  # noqa: F401
except ModuleNotFoundError:  # a source checkout before `pip install -e .` maps real/robot_rl_ros
    sys.path.insert(0, str(ROOT / "real"))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "real"), os.environ.get("PYTHONPATH", "")])

from robot_rl_ros import messages as M  # noqa: E402
from robot_rl_ros.qos import DEFAULT, QosProfile  # noqa: E402
from robot_rl_ros.transport import make_transport  # noqa: E402

ROBOT = ROOT / "real" / "config" / "panda.yaml"
BENCH_QOS = QosProfile(depth=100)  # reliable: loss then means late beyond the test window, not dropped
NAMES = [f"joint{i}" for i in range(1, 8)] + ["finger_joint1", "finger_joint2"]


def echo(seconds: float) -> None:
    """The second process: decode every ping like a node would, answer at once."""
    t = make_transport("echo", "cyclone")
    states = t.publisher("/bench/pong", M.JOINT_STATE, BENCH_QOS)
    acks = t.publisher("/bench/image_ack", M.JOINT_STATE, BENCH_QOS)

    def on_state(msg) -> None:
        states.publish(msg)

    def on_image(msg) -> None:
        pixels = M.image_to_numpy(msg)  # the numpy view a node would use
        acks.publish(M.joint_state(["bytes"], [float(pixels.size)], stamp_ns=M.stamp_ns(msg.header)))

    t.subscribe("/bench/ping", M.JOINT_STATE, on_state, BENCH_QOS)
    t.subscribe("/bench/image", M.IMAGE, on_image, BENCH_QOS)
    print("ready", flush=True)
    time.sleep(seconds)
    t.close()


def percentiles(values_ms: list[float]) -> dict[str, float]:
    if not values_ms:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "n": 0}
    return {"p50_ms": float(np.percentile(values_ms, 50)), "p99_ms": float(np.percentile(values_ms, 99)),
            "max_ms": float(np.max(values_ms)), "n": len(values_ms)}


def _wait_matched(publisher, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while publisher.subscription_count() == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the echo process was not discovered; is another DDS config in CYCLONEDDS_URI?")
        time.sleep(0.05)


def round_trips(seconds: float, env: dict[str, str]) -> dict[str, dict[str, float]]:
    proc = subprocess.Popen([sys.executable, __file__, "--echo", str(seconds * 2 + 20)], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        t = make_transport("pinger", "cyclone")
        back: dict[int, int] = {}
        images_back: dict[int, int] = {}
        t.subscribe("/bench/pong", M.JOINT_STATE,
                    lambda m: back.setdefault(M.stamp_ns(m.header), time.perf_counter_ns()), BENCH_QOS)
        t.subscribe("/bench/image_ack", M.JOINT_STATE,
                    lambda m: images_back.setdefault(M.stamp_ns(m.header), time.perf_counter_ns()), BENCH_QOS)
        ping = t.publisher("/bench/ping", M.JOINT_STATE, BENCH_QOS)
        image = t.publisher("/bench/image", M.IMAGE, BENCH_QOS)
        _wait_matched(ping)
        _wait_matched(image)
        time.sleep(0.5)
        rgb = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
        q = np.zeros(9)
        sent: list[int] = []
        images_sent: list[int] = []
        period, next_image = 1 / 500, time.perf_counter()
        start = time.perf_counter()
        deadline = start + seconds
        k = 0
        while time.perf_counter() < deadline:
            now = time.perf_counter_ns()  # the send time travels in the stamp: a unique key per message
            ping.publish(M.joint_state(NAMES, q, q, q, stamp_ns=now))
            sent.append(now)
            if time.perf_counter() >= next_image:
                stamp = time.perf_counter_ns()
                image.publish(M.image(rgb, stamp_ns=stamp))
                images_sent.append(stamp)
                next_image += 1 / 30
            k += 1
            pause = start + k * period - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        time.sleep(0.5)  # let the last answers arrive
        t.close()
    finally:
        proc.kill()
        proc.wait()
    rtt = [(back[s] - s) / 1e6 for s in sent if s in back]
    image_rtt = [(images_back[s] - s) / 1e6 for s in images_sent if s in images_back]
    states = {**percentiles(rtt), "sent": len(sent), "loss": 1 - len(rtt) / max(len(sent), 1),
              "rate_hz": len(sent) / seconds}
    images = {**percentiles(image_rtt), "sent": len(images_sent), "loss": 1 - len(image_rtt) / max(len(images_sent), 1)}
    return {"joint_state_500hz_round_trip": states, "image_224_30hz_round_trip": images}


def untrained_policy(path: Path) -> Path:
    import torch

    from robot_rl.algorithms.networks import ActorCritic
    from robot_rl.training.export import export_policy

    model = ActorCritic(32, 39, 8, (128, 128), (128, 128))
    meta = {"task": "panda_reach", "observation_dim": 32, "action_dim": 8, "action_low": [-1.0] * 8,
            "action_high": [1.0] * 8, "control_dt": 0.05,
            "task_config": {"action_scale": 0.1, "episode_length_s": 1e6, "success_distance": 0.05}}
    return export_policy(model, path, meta, torch.full((8,), -1.0), torch.ones(8))


def control_loop(policy: Path, seconds: float, env: dict[str, str]) -> dict[str, dict[str, float]]:
    from robot_rl_ros.transition import from_message

    def node(name: str, *params: str) -> subprocess.Popen:
        args = [sys.executable, "-m", f"robot_rl_ros.{name}", "--ros-args", "-p", f"robot:={ROBOT}"]
        for p in params:
            args += ["-p", p]
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    procs = [node("fake_arm", "camera_hz:=0.0"),
             node("policy_node", f"policy:={policy}", "rate_hz:=100.0", "target:=[0.45, 0.0, 0.35]",
                  "end_on_success:=false", "episode_length_s:=100000.0")]
    t = make_transport("bench_probe", "cyclone")
    times: list[float] = []
    holding: list[tuple[float, bool]] = []
    t.subscribe("/policy/transition", M.FLOAT64_ARRAY, lambda m: times.append(from_message(m).time),
                QosProfile(depth=200))
    t.subscribe("/safety/holding", M.BOOL, lambda m: holding.append((time.monotonic(), m.data)), DEFAULT)
    freeze = t.publisher("/fake_arm/freeze", M.BOOL, DEFAULT)
    try:
        deadline = time.monotonic() + 90
        while len(times) < 50:  # the nodes are up and stepping
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("the fake arm and policy node did not start; run them by hand to see why")
            time.sleep(0.1)
        first = len(times)
        time.sleep(seconds)
        periods = np.diff(times[first:]) * 1e3
        stale_to_hold = []
        for _ in range(10):
            start = time.monotonic()
            freeze.publish(M.boolean(True))
            while not any(h and when >= start for when, h in holding) and time.monotonic() - start < 5:
                time.sleep(0.001)
            held = [when for when, h in holding if h and when >= start]
            stale_to_hold.append((held[0] - start) * 1e3 if held else float("inf"))
            freeze.publish(M.boolean(False))
            thaw = time.monotonic()
            while not any(not h and when > thaw + 0.05 for when, h in holding) and time.monotonic() - thaw < 5:
                time.sleep(0.01)
    finally:
        t.close()
        for p in procs:
            p.send_signal(2)
            p.wait(15)
    return {"control_100hz_period": {**percentiles(list(periods)),
                                     "jitter_p99_ms": float(np.percentile(np.abs(periods - 10.0), 99))},
            "stale_state_to_hold": percentiles(stale_to_hold)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each streaming measurement")
    parser.add_argument("--policy", help="exported policy for the control loop (default: an untrained one)")
    parser.add_argument("--out", help="also write the results as JSON here")
    parser.add_argument("--echo", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo is not None:
        echo(args.echo)
        return
    base = int(os.environ.get("ROS_DOMAIN_ID", "0") or 0)
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": str((base + 201) % 233)}
    os.environ.update(env)
    results = round_trips(args.seconds, env)
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(args.policy) if args.policy else untrained_policy(Path(tmp) / "policy.pt")
        results.update(control_loop(policy, args.seconds, env))
    results["machine"] = {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]}
    for name, values in results.items():
        print(f"{name:32s} " + "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in values.items()))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
