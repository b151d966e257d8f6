"""Policy files someone hands you: loading never runs code, and damage is refused in one line."""

from __future__ import annotations

import io
import json
import pathlib
import zipfile
from pathlib import Path

import pytest
import torch

from robot_rl.algorithms.networks import ActorCritic
from robot_rl.cli.main import main
from robot_rl.training.export import export_policy, load_policy


class Payload:
    """Unpickling this touches ``marker``: the side effect a crafted archive entry would have."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def exported(tmp_path: Path) -> Path:
    """A real panda_reach-sized policy file (32 observations, 8 actions)."""
    model = ActorCritic(32, 32, 8, (16,), (16,), "elu", 1.0, True)
    low, high = -torch.ones(8), torch.ones(8)
    metadata = {"task": "panda_reach", "observation_group": "policy", "observation_dim": 32, "action_dim": 8,
                "action_low": low.tolist(), "action_high": high.tolist(), "control_dt": 0.05, "task_config": {}}
    return export_policy(model, tmp_path / "policy.pt", metadata, low, high)


def rewrite(source: Path, out: Path, change) -> Path:
    """A copy of the archive with ``change(inner_name, bytes) -> bytes | None`` applied to each entry
    (None drops it); a valid zip with correct CRCs, as an attacker would write it."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            inner = info.filename.split("/", 1)[1]
            data = change(inner, old.read(info.filename))
            if data is not None:
                new.writestr(info.filename, data)
    return out


def program_json(edit):
    def change(inner: str, data: bytes) -> bytes:
        if inner != "models/model.json":
            return data
        program = json.loads(data)
        edit(program)
        return json.dumps(program).encode()

    return change


def test_a_crafted_sample_inputs_entry_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save(Payload(marker), buffer)
    evil = rewrite(exported(tmp_path), tmp_path / "evil.pt",
                   lambda inner, data: buffer.getvalue() if inner == "data/sample_inputs/model.pt" else data)

    try:  # plain torch.export.load falls back to full unpickling: the attack is real
        with open(evil, "rb") as f:
            torch.export.load(f)
    except Exception:  # noqa: BLE001 - it may fail after the code ran; that it ran is the point
        pass
    assert marker.exists()
    marker.unlink()

    with pytest.raises(ValueError, match=r"evil.pt is refused: .*sample_inputs/model.pt cannot be read without "
                                         r"full unpickling; only load policy files written by `robot-rl export`"):
        load_policy(evil)
    assert not marker.exists()
    # the commands that take policy files refuse it the same way, before anything runs
    assert main(["record", "--task", "panda_reach", "--episodes", "1", "--num-envs", "1",
                 "--source", f"policy:{evil}", "--out", str(tmp_path / "data")]) == 2
    assert not marker.exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("attack,message", [
    ("guards", "carries guard code, which loading would execute"),
    ("target", "calls 'torch.os.system', which is not a tensor operator"),
    ("expression", "has a shape expression that is not arithmetic on sizes"),
    ("pickled weight", "is stored as a pickle or custom object"),
    ("extra entry", "is not part of a plain exported program"),
    ("compiled code", "is not part of a plain exported program"),
])
def test_program_entries_that_would_execute_or_unpickle_are_refused(tmp_path: Path, attack: str, message: str):
    good = exported(tmp_path)

    def guards(program):
        program["guards_code"] = ["__import__('pathlib').Path('pwned').touch()"]

    def target(program):
        program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"

    def expression(program):
        key = next(iter(program["range_constraints"]))
        program["range_constraints"]["__import__('os').system('true')"] = program["range_constraints"].pop(key)

    def pickled(inner: str, data: bytes) -> bytes:
        if inner == "data/weights/model_weights_config.json":
            config = json.loads(data)
            next(iter(config["config"].values()))["use_pickle"] = True
            return json.dumps(config).encode()
        return data

    changes = {"guards": program_json(guards), "target": program_json(target),
               "expression": program_json(expression), "pickled weight": pickled}
    if attack in changes:
        bad = rewrite(good, tmp_path / "bad.pt", changes[attack])
    else:
        name = "data/weights/model.pt" if attack == "extra entry" else "data/aotinductor/model/model.so"
        bad = rewrite(good, tmp_path / "bad.pt", lambda inner, data: data)
        with zipfile.ZipFile(bad, "a") as archive:
            archive.writestr(f"{archive.namelist()[0].split('/')[0]}/{name}", b"\x7fELF")
    with pytest.raises(ValueError, match=message) as error:
        load_policy(bad)
    assert "\n" not in str(error.value) and str(bad) in str(error.value)


@pytest.mark.parametrize("damage,message", [
    ("flip", "fails its CRC check"),
    ("truncate", "truncated or not a torch file"),
    ("weights", "its weights do not match the checksum written with them"),
    ("text", "truncated or not a torch file"),
])
def test_damaged_policy_files_are_refused_in_one_line(tmp_path: Path, damage: str, message: str) -> None:
    good = exported(tmp_path)
    raw = bytearray(good.read_bytes())
    bad = tmp_path / "bad.pt"
    if damage == "flip":
        with zipfile.ZipFile(good) as archive:
            info = next(i for i in archive.infolist() if i.filename.endswith("weight_0"))
        start = info.header_offset + 30 + int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28],
                                                        "little") \
            + int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
        raw[start + info.compress_size // 2] ^= 0x04
        bad.write_bytes(raw)
    elif damage == "truncate":
        bad.write_bytes(raw[: len(raw) // 2])
    elif damage == "weights":  # new weights with correct CRCs: only the checksum can tell
        rewrite(good, bad, lambda inner, data: bytes(len(data)) if inner == "data/weights/weight_0" else data)
    else:
        bad.write_text("not a policy")
    with pytest.raises(ValueError, match=message) as error:
        load_policy(bad)
    assert "\n" not in str(error.value) and str(bad) in str(error.value)


def test_the_exported_policy_loads_and_acts(tmp_path: Path) -> None:
    policy, meta = load_policy(exported(tmp_path))
    assert meta["action_dim"] == 8 and len(meta["weights_sha256"]) == 64
    action = policy(torch.randn(5, 32))
    assert action.shape == (5, 8) and bool((action.abs() <= 1).all())
    assert [p.name for p in tmp_path.iterdir()] == ["policy.pt"]  # nothing temporary left
