"""Typed, frozen dataclass configs from YAML files and ``--dotted.key value`` overrides.

Every mistake is reported before anything runs, naming the file, the key and the reason:
an unknown key (with the valid ones), a value of the wrong type, a value out of range, a NaN or
infinity anywhere, an empty file, or a combination a config's ``check_config`` refuses.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A launch file or override that cannot become a config; the message says where and why."""


def bounded(default: Any, low: float | None = None, high: float | None = None, *,
            low_open: bool = False) -> Any:
    """A dataclass field whose value must lie in [low, high] (or (low, high] with ``low_open``)."""
    return dataclasses.field(default=default, metadata={"range": (low, high, low_open)})


def _check_range(value: Any, field: dataclasses.Field, where: str) -> None:
    low, high, low_open = field.metadata.get("range", (None, None, False))
    if value is None or isinstance(value, bool):
        return
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(f"{where}: must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ConfigError(f"{where}: must be <= {high}, got {value}")


def _finite(value: Any, where: str) -> None:
    """ConfigError unless every float in ``value`` (nested lists and mappings too) is finite: no
    setting means anything with NaN, and an infinity slips past every range check."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value}")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _finite(item, f"{where}[{i}]")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _finite(item, f"{where}.{key}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` (parsed YAML) as type ``tp``; raises ConfigError naming ``where``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        _finite(value, where)
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return convert(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (tuple, Sequence) or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        return tuple(convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = args or (Any, Any)
        return {convert(k, key_type, where): convert(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        _finite(float(value), where)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {_type_name(tp)}")


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys, types and ranges, then the rules
    between fields: a config may define ``check_config(self)``, raising ConfigError with keys
    relative to itself (``algo.num_minibatches: ...``)."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    prefix = f"{where}." if where else ""
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"unknown key '{prefix}{unknown[0]}'; valid keys here: {', '.join(fields)}")
    missing = [name for name, f in fields.items() if name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"missing key '{prefix}{missing[0]}' (required)")
    values = {}
    for name, value in data.items():
        here = prefix + name
        values[name] = convert(value, hints[name], here)
        _check_range(values[name], fields[name], here)
    config = cls(**values)
    check = getattr(config, "check_config", None)
    if callable(check):
        try:
            check()
        except ConfigError as error:
            raise ConfigError(f"{prefix}{error}") from None
    return config


def to_dict(config: Any) -> Any:
    """A config as plain YAML-ready data (tuples become lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, Mapping):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def parse_overrides(args: Sequence[str]) -> dict[str, Any]:
    """``["--algo.lr", "3e-4", "--env.num-envs", "128"]`` -> nested ``{"algo": {"lr": 3e-4}, ...}``.

    Keys may use dashes for underscores; values are parsed as YAML scalars/lists.
    """
    out: dict[str, Any] = {}
    items = list(args)
    i = 0
    while i < len(items):
        key = items[i]
        if not key.startswith("--"):
            raise ConfigError(f"override {key!r} must look like --section.key VALUE")
        key = key[2:]
        if "=" in key:
            key, raw = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(items):
                raise ConfigError(f"override --{key} has no value")
            raw = items[i + 1]
            i += 2
        node = out
        parts = key.replace("-", "_").split(".")
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                given = ".".join(parts[:depth + 1])
                raise ConfigError(f"override --{key}: --{given} was already given the value {node!r}, "
                                  f"not a mapping; give --{given}.KEY VALUE pairs only")
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def merge(base: Mapping[str, Any], extra: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Deep-merge ``extra`` into ``base``: mappings merge, and a mapping with integer keys merges
    into a list item by item (``--rewards.modules.0.weight 2``); everything else replaces."""
    out = dict(base)
    for key, value in extra.items():
        here = f"{where}.{key}" if where else str(key)
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value, here)
        elif isinstance(value, Mapping) and isinstance(out.get(key), (list, tuple)) and value:
            out[key] = _merge_items(list(out[key]), value, here)
        else:
            out[key] = value
    return out


def _merge_items(items: list[Any], extra: Mapping[Any, Any], where: str) -> list[Any]:
    for key, value in extra.items():
        index = int(key) if isinstance(key, int) or (isinstance(key, str) and key.isdigit()) else None
        if index is None or index >= len(items):
            raise ConfigError(f"{where}.{key}: expected an index into the list of {len(items)} items")
        both = isinstance(value, Mapping) and isinstance(items[index], Mapping)
        items[index] = merge(items[index], value, f"{where}.{index}") if both else value
    return items


def read_mapping(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of YAML file ``path``. An empty or comment-only file is an error
    (it would silently run every default); write ``{}`` to mean that."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: launch file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty or holds only comments; write the settings to use "
                          "(a file holding {} keeps every default)")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return dict(data)


def load(cls: type[T], path: str | Path, overrides: Sequence[str] = ()) -> T:
    """Read ``path`` (YAML) into ``cls``, applying command-line ``overrides``."""
    path = Path(path)
    data = read_mapping(path)
    try:
        data = merge(data, parse_overrides(overrides))
        return from_dict(cls, data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
