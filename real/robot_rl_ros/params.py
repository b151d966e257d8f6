"""Node parameters the ROS 2 way, without ROS: ``--ros-args -p name:=value``,
``--params-file file.yaml`` (what ``ros2 launch`` passes) and ``-r __node:=name``.

Each node declares a frozen dataclass; values are parsed as YAML scalars and checked with the
project's config loader, so a typo or a wrong type stops the node with one clear line.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from robot_rl.configs.loading import ConfigError, from_dict

P = TypeVar("P")


@dataclasses.dataclass(frozen=True)
class NodeArgs:
    name: str
    namespace: str
    values: dict[str, Any]


def _params_file(path: str, node: str) -> dict[str, Any]:
    from robot_rl.configs.loading import read_mapping

    data = read_mapping(Path(path))  # an empty file is an error, as for launch files
    values: dict[str, Any] = {}
    for key, section in data.items():
        # ros2 launch writes "/**:" (every node); files written by hand name the node.
        if key in ("/**", "**", node, f"/{node}") and isinstance(section, dict):
            values.update(section.get("ros__parameters", {}) or {})
    return values


def parse_ros_args(argv: Sequence[str], default_name: str) -> NodeArgs:
    """Node name, namespace and parameter values from a command line."""
    args = list(argv)
    if "--ros-args" not in args:
        if args:
            raise ConfigError(f"unexpected arguments {' '.join(args)}; pass parameters as --ros-args -p name:=value")
        return NodeArgs(default_name, "/", {})
    ros = args[args.index("--ros-args") + 1:]
    name, namespace, values, files = default_name, "/", {}, []
    i = 0
    while i < len(ros):
        flag = ros[i]
        if flag == "--ros-args":
            i += 1
            continue
        if flag in ("-p", "--param", "-r", "--remap", "--params-file", "--log-level") and i + 1 < len(ros):
            arg = ros[i + 1]
            i += 2
            if flag in ("-p", "--param"):
                key, sep, raw = arg.partition(":=")
                if not sep:
                    raise ConfigError(f"parameter {arg!r} must look like name:=value")
                values[key] = yaml.safe_load(raw)
            elif flag in ("-r", "--remap"):
                key, _, value = arg.partition(":=")
                if key == "__node":
                    name = value
                elif key == "__ns":
                    namespace = value
            elif flag == "--params-file":
                files.append(arg)
        elif flag in ("--", "--enclave"):
            i += 2 if flag == "--enclave" else 1
        else:
            raise ConfigError(f"unknown ROS argument {flag!r}; use -p name:=value or --params-file FILE")
    merged: dict[str, Any] = {}
    for file in files:
        merged.update(_params_file(file, name))
    merged.update(values)  # -p wins over files, as in ROS 2
    return NodeArgs(name, namespace, merged)


def help_text(cls: type, summary: str) -> str:
    lines = [summary.strip(), "", "parameters (--ros-args -p name:=value):"]
    for f in dataclasses.fields(cls):
        default = "required" if f.default is dataclasses.MISSING else f"default {f.default!r}"
        lines.append(f"  {f.name}  ({default})")
        doc = f.metadata.get("doc")
        if doc:
            lines.append(f"      {doc}")
    return "\n".join(lines)


def param(default: Any = dataclasses.MISSING, doc: str = "") -> Any:
    """A parameter field with a description shown by ``--help``."""
    if isinstance(default, (list, dict)):
        frozen = tuple(default) if isinstance(default, list) else default
        return dataclasses.field(default=frozen, metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def _coerce(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Launch substitutions arrive as strings ("2", "[0.5, 0.1, 0.3]"); read those as YAML unless
    the parameter is a string."""
    hints = typing.get_type_hints(cls)
    out = dict(values)
    for name, value in values.items():
        if isinstance(value, str) and hints.get(name, str) is not str:
            try:
                out[name] = yaml.safe_load(value)
            except yaml.YAMLError:
                pass  # from_dict reports the type error with the parameter's name
    return out


def parse(cls: type[P], argv: Sequence[str] | None, default_name: str, summary: str) -> tuple[P, NodeArgs]:
    """Parameters of a node from ``argv`` (default ``sys.argv[1:]``); ``--help`` prints them and exits."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(help_text(cls, summary))
        raise SystemExit(0)
    node = parse_ros_args(argv, default_name)
    try:
        return from_dict(cls, _coerce(cls, node.values)), node
    except ConfigError as error:
        raise ConfigError(f"{node.name}: parameter {error}") from None
