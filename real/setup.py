"""colcon (ament_python) build of robot_rl_ros: ``colcon build --packages-select robot_rl_ros``
from a workspace whose src/ holds this repository, then
``ros2 launch robot_rl_ros deploy_fake_arm.launch.py policy:=/abs/policy.pt``.

Installs the nodes as ROS 2 executables (lib/robot_rl_ros/<node>), the robot configs under
share/robot_rl_ros/config and the launch files from ../launch/ros under share/robot_rl_ros/launch.
robot_rl and its Python dependencies come from pip (``pip install -e '.[ros,sim]'`` at the root).
"""

import os
from glob import glob

from setuptools import setup

PACKAGE = "robot_rl_ros"
HERE = os.path.dirname(os.path.abspath(__file__))
NODES = ("fake_arm", "policy_node", "intervention", "recorder", "learner_node")


def relative(pattern: str) -> list[str]:
    """Files matching ``pattern`` (relative to this file), as paths relative to this file."""
    return sorted(os.path.relpath(p, HERE) for p in glob(os.path.join(HERE, pattern)))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/config", relative("config/*.yaml")),
        (f"share/{PACKAGE}/launch", relative("../launch/ros/*.launch.py")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="robot_rl developers",
    description="Deploy robot_rl policies on ROS 2 arms",
    license="Apache-2.0",
    entry_points={"console_scripts": [f"{node} = {PACKAGE}.{node}:entry" for node in NODES]},
)
