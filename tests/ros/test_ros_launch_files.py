"""The ROS 2 launch files are valid without ROS installed: they only declare arguments and
nodes (no logic), every node is an executable of the package, every parameter exists on that
node, every LaunchConfiguration is declared; and the colcon files agree with the nodes."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
import sys
import types
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((ROOT / "launch" / "ros").glob("*.launch.py"))
NODE_PARAMS = {"fake_arm": ("robot_rl_ros.fake_arm", "FakeArmParams"),
               "policy_node": ("robot_rl_ros.policy_node", "PolicyNodeParams"),
               "recorder": ("robot_rl_ros.recorder", "RecorderParams"),
               "intervention": ("robot_rl_ros.intervention", "InterventionParams"),
               "learner_node": ("robot_rl_ros.learner_node", "LearnerNodeParams")}


class Recorded:
    """Stands in for a launch class: remembers its arguments."""

    calls: list[Recorded] = []

    def __init__(self, *args, **kwargs) -> None:
        self.kind, self.args, self.kwargs = type(self).__name__, args, kwargs
        Recorded.calls.append(self)


def stub_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {"launch": ["LaunchDescription"], "launch.actions": ["DeclareLaunchArgument"],
             "launch.substitutions": ["LaunchConfiguration", "PathJoinSubstitution"],
             "launch_ros.actions": ["Node"], "launch_ros.substitutions": ["FindPackageShare"]}
    for module, classes in names.items():
        stub = types.ModuleType(module)
        for name in classes:
            setattr(stub, name, type(name, (Recorded,), {}))
        monkeypatch.setitem(sys.modules, module, stub)
    monkeypatch.setitem(sys.modules, "launch_ros", types.ModuleType("launch_ros"))


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_declares_arguments_and_nodes_only(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = ast.parse(path.read_text())
    logic = [type(n).__name__ for n in ast.walk(tree) if isinstance(n, (ast.If, ast.For, ast.While, ast.Try,
                                                                         ast.IfExp, ast.ListComp))]
    assert not logic, f"{path.name} has logic: {logic}"
    imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"launch", "launch_ros", "__future__"}

    stub_launch(monkeypatch)
    Recorded.calls = []
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    description = namespace["generate_launch_description"]()
    assert description.kind == "LaunchDescription"
    declared = {c.args[0] for c in Recorded.calls if c.kind == "DeclareLaunchArgument"}
    used = {c.args[0] for c in Recorded.calls if c.kind == "LaunchConfiguration"}
    assert used <= declared, f"undeclared launch arguments: {used - declared}"
    nodes = [c for c in Recorded.calls if c.kind == "Node"]
    assert nodes and "policy_node" in {n.kwargs["executable"] for n in nodes}
    for node in nodes:
        assert node.kwargs["package"] == "robot_rl_ros"
        module, cls = NODE_PARAMS[node.kwargs["executable"]]
        fields = {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), cls))}
        for params in node.kwargs["parameters"]:
            assert set(params) <= fields, f"{node.kwargs['executable']}: unknown {set(params) - fields}"


def test_colcon_package_lists_every_node() -> None:
    setup = (ROOT / "real" / "setup.py").read_text()
    nodes = set(re.findall(r'"(\w+)"', setup.split("NODES = ", 1)[1].split("\n", 1)[0]))
    assert nodes == set(NODE_PARAMS)
    for node in nodes:
        assert callable(importlib.import_module(f"robot_rl_ros.{node}").entry)
    package = (ROOT / "real" / "package.xml").read_text()
    assert "<name>robot_rl_ros</name>" in package and "<build_type>ament_python</build_type>" in package
    assert (ROOT / "real" / "resource" / "robot_rl_ros").is_file()
    assert "install_scripts=$base/lib/robot_rl_ros" in (ROOT / "real" / "setup.cfg").read_text()


def test_parameters_arrive_from_a_launch_params_file(tmp_path: Path) -> None:
    from robot_rl_ros.params import parse
    from robot_rl_ros.policy_node import PolicyNodeParams

    # What launch_ros writes for parameters given as substitutions: strings, under "/**".
    file = tmp_path / "params.yaml"
    file.write_text("/**:\n  ros__parameters:\n    robot: r.yaml\n    policy: p.pt\n"
                    "    target: '[0.5, 0.1, 0.3]'\n    episodes: '2'\n")
    params, node = parse(PolicyNodeParams, ["--ros-args", "-r", "__node:=pilot", "--params-file", str(file),
                                            "-p", "episodes:=3"], "policy_node", "")
    assert node.name == "pilot"
    assert params.target == (0.5, 0.1, 0.3) and params.episodes == 3 and params.robot == "r.yaml"
    from robot_rl.configs.loading import ConfigError

    with pytest.raises(ConfigError, match="pilot: parameter unknown key 'speed'"):
        parse(PolicyNodeParams, ["--ros-args", "-r", "__node:=pilot", "-p", "speed:=3"], "policy_node", "")
