"""The core package must import on a machine without simulators or ROS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKED = ("mujoco", "mujoco_warp", "warp", "rclpy", "isaaclab", "cyclonedds", "cv2")

SCRIPT = textwrap.dedent(
    f"""
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError("No module named " + repr(name), name=name)
            return None

    sys.meta_path.insert(0, Block())
    import robot_rl, robot_rl.envs, robot_rl.envs.gym_adapter, robot_rl.registry
    import robot_rl.cli.main, robot_rl.cli.tasks, robot_rl.cli.sim_demo, robot_rl.utils.video
    robot_rl.cli.main.build_parser()
    try:
        robot_rl.envs.make("panda_reach")
    except ModuleNotFoundError as error:
        print("make:", error)
    print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}))
    """
)


def test_core_imports_without_simulators_or_ros() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "loaded: []" in result.stdout
    # Asking for a simulated env without the simulator says what is missing and what to install.
    assert "make: simulation needs 'mujoco'; install it with: pip install 'robot-rl[sim]'" in result.stdout
