"""A self-contained policy file: a ``torch.export`` program plus JSON metadata.

Loading needs torch only, not the training code (for files you made yourself: ``torch.export.load``
unpickles whatever an archive holds, so a crafted file runs code):

    program = torch.export.load("policy.pt", extra_files={"robot_rl.json": ""})
    action = program.module()(obs)                       # float[B, P] -> float[B, A]

or, for any file someone hands you, ``policy, meta = load_policy("policy.pt")``, which checks the
archive first and refuses anything that could run code.
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robot_rl.algorithms.networks import ActorCritic
from robot_rl.utils.files import CorruptFileError, check_zip, digest, write_atomic

METADATA = "robot_rl.json"
WEIGHTS_CHECKSUM = "weights_sha256"
"""Metadata key: :func:`robot_rl.utils.files.digest` of the program's weights and constants."""


class DeployedPolicy(nn.Module):
    """Observation float[B, P] -> deterministic action float[B, A] in [low, high], A = len(low).

    An actor trained with simulation-only privileged actions (``robot_rl.disturbers.privileged``)
    outputs them after the robot's A actions; they are cut off here, so the policy file holds
    the robot's actions only.
    """

    def __init__(self, model: ActorCritic, low: torch.Tensor, high: torch.Tensor) -> None:
        super().__init__()
        self.norm = copy.deepcopy(model.actor_norm)
        self.actor = copy.deepcopy(model.actor)
        outputs, self.action_dim = int(model.log_std.numel()), int(low.numel())
        if outputs < self.action_dim:
            raise ValueError(f"the actor outputs {outputs} actions but the robot has {self.action_dim}: "
                             "the checkpoint belongs to another task or robot")
        self.register_buffer("low", low.detach().clone().float().cpu())
        self.register_buffer("high", high.detach().clone().float().cpu())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        actions = self.actor(self.norm(obs))[:, :self.action_dim]
        return torch.maximum(torch.minimum(actions, self.high), self.low)


def export_policy(model: ActorCritic, out: str | Path, metadata: dict[str, Any], low: torch.Tensor,
                  high: torch.Tensor) -> Path:
    """Write ``out``: the deterministic policy as a ``torch.export`` program (any batch size)
    with ``metadata`` stored inside the archive, plus the checksum of its weights."""
    module = DeployedPolicy(model.cpu(), low, high).eval().requires_grad_(False)
    example = torch.zeros(2, metadata["observation_dim"])
    program = torch.export.export(module, (example,), dynamic_shapes={"obs": {0: torch.export.Dim("batch")}})
    metadata = {**metadata, WEIGHTS_CHECKSUM: _weights_digest(program)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: torch.export would warn about any suffix but .pt2
            torch.export.save(program, f, extra_files={METADATA: json.dumps(metadata, indent=2)})

    return write_atomic(out, write)


def load_policy(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The policy (observation float[B, P] -> action float[B, A]) and its metadata (task,
    observation and action sizes, control period, task config).

    The file is read once and checked before ``torch.export.load`` sees it: every zip entry's
    CRC, only the entries a plain exported program has (no pickled weights, constants or custom
    objects, no compiled code, no guard code, operators from ``torch.ops.aten`` and plain
    arithmetic, shape expressions made of symbols and numbers), example inputs readable
    weights-only; then the weights' checksum. Anything else is refused with ValueError, before
    any of it runs."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path} cannot be read: {error.strerror or error}") from None
    try:
        check_zip(path, data)
        check_archive(data)
    except CorruptFileError as error:
        raise ValueError(f"{path} is not an exported robot_rl policy: {str(error).removeprefix(str(path) + ' ')}") \
            from None
    except UnsafeArchive as error:
        raise ValueError(f"{path} is refused: {error}; only load policy files written by `robot-rl export`") from None
    except (AttributeError, TypeError, KeyError) as error:  # JSON of the wrong shape, a missing entry
        raise ValueError(f"{path} is refused: its program description is malformed ({type(error).__name__}: "
                         f"{error}); only load policy files written by `robot-rl export`") from None
    files = {METADATA: ""}
    try:
        program = torch.export.load(io.BytesIO(data), extra_files=files)
    except Exception as error:  # noqa: BLE001 - anything a damaged archive raises is reported the same way
        raise ValueError(f"{path} is not an exported robot_rl policy: {str(error).splitlines()[0]}") from None
    if not files[METADATA]:
        raise ValueError(f"{path} has no robot_rl metadata; export it with `robot-rl export`")
    try:
        metadata = json.loads(files[METADATA])
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: its robot_rl metadata is not JSON ({error})") from None
    expected = metadata.get(WEIGHTS_CHECKSUM) if isinstance(metadata, dict) else None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: its robot_rl metadata is not a JSON object")
    if expected is not None and expected != _weights_digest(program):
        raise ValueError(f"{path} is corrupted: its weights do not match the checksum written with them; "
                         "export the policy again")
    return program.module(), metadata


def _weights_digest(program: torch.export.ExportedProgram) -> str:
    return digest({"state_dict": dict(program.state_dict), "constants": dict(program.constants)})


# -- what a policy file may hold ---------------------------------------------------------------------

class UnsafeArchive(Exception):
    """An archive entry that loading would unpickle, execute or compile."""


_FIXED = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
_ENTRY = re.compile(r"(models/\w+\.json|data/weights/\w+_weights_config\.json|data/weights/weight_\d+"
                    r"|data/constants/\w+_constants_config\.json|data/constants/tensor_\d+"
                    r"|data/sample_inputs/\w+\.pt|extra/[\w.-]+)")
_ATEN = re.compile(r"torch\.ops\.aten\.\w+\.\w+")
_REFUSED_ATEN = {"from_file", "_nested_from_padded"}
_ARITHMETIC = {f"_operator.{name}" for name in ("getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "neg",
                                                 "pow", "lt", "le", "gt", "ge", "eq", "ne", "and_", "or_")} | \
    {"torch.sym_max", "torch.sym_min", "torch.sym_float", "torch.sym_int", "torch.sym_not", "torch.sym_sqrt",
     "torch._sym_sqrt", "math.ceil", "math.floor", "math.trunc"}
_EXPR_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?|'[su]\d+'|[A-Za-z_]\w*|\*\*|[-+*/%(),<>=!&|~\s]")
_EXPR_NAMES = re.compile(r"[su]\d+|oo|zoo|nan|True|False|Max|Min|FloorDiv|CeilDiv|CleanDiv|Mod|PythonMod|IntTrueDiv"
                         r"|FloatTrueDiv|TruncToInt|FloorToInt|CeilToInt|RoundToInt|ToFloat|Abs|floor|ceiling|Eq|Ne"
                         r"|Lt|Le|Gt|Ge|And|Or|Not|Integer|Rational|Pow|Mul|Add"
                         r"|Symbol|positive|negative|nonnegative|nonpositive|integer|real|finite|zero|even|odd")


def check_archive(data: bytes) -> None:
    """Refuse (:class:`UnsafeArchive`) what ``torch.export.load`` would unpickle with full
    pickle, execute or compile: see :func:`load_policy`."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        roots = {name.split("/", 1)[0] for name in names}
        if len(roots) != 1:
            raise UnsafeArchive(f"it has {len(roots)} top-level folders, a torch.export archive has one")
        root = roots.pop() + "/"
        for name in names:
            inner = name[len(root):]
            if inner not in _FIXED and not _ENTRY.fullmatch(inner):
                raise UnsafeArchive(f"its entry {name!r} is not part of a plain exported program")
        if archive.read(root + "archive_format").decode(errors="replace").strip() != "pt2":
            raise UnsafeArchive("it is not a pt2 archive (an older format that loads with full unpickling)")
        for name in names:
            inner = name[len(root):]
            if inner.endswith(("_weights_config.json", "_constants_config.json")):
                for key, entry in _json(archive, name).get("config", {}).items():
                    stored = str(entry.get("path_name", ""))
                    if entry.get("use_pickle") or not stored.startswith(("weight_", "tensor_")):
                        raise UnsafeArchive(f"{key!r} in {name} is stored as a pickle or custom object")
            elif inner.startswith("data/sample_inputs/"):
                try:
                    torch.load(io.BytesIO(archive.read(name)), weights_only=True)
                except Exception:  # noqa: BLE001 - whatever the reason, it would need full unpickling
                    raise UnsafeArchive(f"{name} cannot be read without full unpickling") from None
            elif inner.startswith("models/"):
                _check_program(_json(archive, name), name)


def _json(archive: zipfile.ZipFile, name: str) -> dict[str, Any]:
    try:
        value = json.loads(archive.read(name))
    except ValueError as error:
        raise UnsafeArchive(f"{name} is not JSON ({error})") from None
    if not isinstance(value, dict):
        raise UnsafeArchive(f"{name} is not a JSON object")
    return value


def _check_program(program: dict[str, Any], name: str) -> None:
    if program.get("guards_code"):
        raise UnsafeArchive(f"{name} carries guard code, which loading would execute")
    graph = program.get("graph_module", {}).get("graph", {})
    if graph.get("custom_obj_values"):
        raise UnsafeArchive(f"{name} holds custom objects")
    for node in graph.get("nodes", []):
        target = str(node.get("target", ""))
        aten = _ATEN.fullmatch(target)
        if not ((aten and target.split(".")[3] not in _REFUSED_ATEN) or target in _ARITHMETIC):
            raise UnsafeArchive(f"{name} calls {target!r}, which is not a tensor operator")
    for expr in [*program.get("range_constraints", {}), *_expressions(program)]:
        tokens = _EXPR_TOKEN.findall(expr)
        names = [t for t in tokens if t[0].isalpha() or t[0] == "_"]
        if "".join(tokens) != expr or not all(_EXPR_NAMES.fullmatch(t) for t in names):
            raise UnsafeArchive(f"{name} has a shape expression that is not arithmetic on sizes: {expr[:80]!r}")


def _expressions(value: Any):
    """Every ``expr_str`` string inside a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "expr_str":
                yield str(item)
            else:
                yield from _expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _expressions(item)
