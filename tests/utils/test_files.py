"""Checked files: atomic writes with a checksum, and every kind of damage refused in one line."""

from __future__ import annotations

import os
import signal
import zipfile
from pathlib import Path

import pytest
import torch

from robot_rl.training.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from robot_rl.utils.files import CorruptFileError, WriteError, digest, read_checked, signals_deferred, write_checked


def checkpoint(path: Path) -> Path:
    from robot_rl.algorithms.networks import ActorCritic
    from robot_rl.configs import TrainConfig

    model = ActorCritic(4, 6, 2, (8,), (8,), "elu", 1.0, True)
    return save_checkpoint(path, task="panda_reach", dims={"actor_obs": 4, "critic_obs": 6, "actions": 2},
                           model=model, optimizer=torch.optim.Adam(model.parameters()), iteration=3,
                           env_steps=96, lr=1e-3, cfg=TrainConfig())


def data_spans(path: Path) -> dict[str, tuple[int, int]]:
    """Byte range of each zip entry's stored data (local header + name + extra skipped)."""
    raw = path.read_bytes()
    spans = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            start = info.header_offset
            name_len = int.from_bytes(raw[start + 26:start + 28], "little")
            extra_len = int.from_bytes(raw[start + 28:start + 30], "little")
            begin = start + 30 + name_len + extra_len
            spans[info.filename] = (begin, begin + info.compress_size)
    return spans


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def test_digest_sees_every_value_and_tensor_byte() -> None:
    a, d = torch.arange(6.0).reshape(2, 3), torch.zeros(2, dtype=torch.bool)
    base = {"a": a, "b": [1, 2.5, "x", None], "c": {"d": d}}
    same = {"c": {"d": d.clone()}, "b": [1, 2.5, "x", None], "a": a.clone()}
    assert digest(base) == digest(same)  # key order does not matter
    flipped = {**base, "a": base["a"].clone()}
    flipped["a"].view(torch.int32)[0, 1] ^= 1  # one bit of one float
    for other in (flipped, {**base, "a": base["a"].reshape(3, 2)}, {**base, "a": base["a"].double()},
                  {**base, "b": [1, 2.5000001, "x", None]}, {**base, "b": (1, 2.5, "x", None)},
                  {**base, "b": [1, 2.5, "x", 0]}):
        assert digest(other) != digest(base)


def test_checkpoint_round_trip_carries_a_checksum(tmp_path: Path) -> None:
    path = checkpoint(tmp_path / "model_3.pt")
    assert "checksum" in torch.load(path, weights_only=True)
    payload = load_checkpoint(path, "panda_reach")
    assert payload["iteration"] == 3 and "checksum" not in payload
    assert [p.name for p in tmp_path.iterdir()] == ["model_3.pt"]  # no temporary file left


@pytest.mark.parametrize("damage", ["one byte", "empty", "truncated", "flip in tensor data", "flip in the pickle",
                                    "only a format", "foreign file", "text file", "folder", "missing",
                                    "checksum mismatch"])
def test_every_damaged_checkpoint_is_refused_in_one_line(tmp_path: Path, damage: str) -> None:
    good = checkpoint(tmp_path / "good.pt")
    bad = tmp_path / "model_53.pt"
    raw = bytearray(good.read_bytes())
    spans = data_spans(good)
    if damage == "one byte":  # printf t > model_53.pt
        bad.write_bytes(b"t")
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated":
        bad.write_bytes(raw[: len(raw) * 2 // 3])
    elif damage.startswith("flip"):
        names = [n for n in spans if n.split("/")[-2] == "data"] if "tensor" in damage else \
            [n for n in spans if n.endswith("data.pkl")]
        begin, end = spans[names[0]]
        raw[(begin + end) // 2] ^= 0x10
        bad.write_bytes(raw)
    elif damage == "only a format":
        torch.save({"format": "robot_rl.ppo/1"}, bad)
    elif damage == "foreign file":
        torch.save(torch.zeros(3), bad)
    elif damage == "text file":
        bad.write_text("format: robot_rl.ppo/1\n")
    elif damage == "folder":
        bad.mkdir()
    elif damage == "checksum mismatch":  # a valid zip whose contents changed after the checksum was taken
        payload = torch.load(good, weights_only=True)
        next(iter(payload["model"].values())).add_(1e-3)
        torch.save(payload, bad)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(bad)
    message = one_line(error)
    assert str(bad) in message
    expected = {"one byte": "truncated or not a torch file", "empty": "truncated or not a torch file",
                "truncated": "truncated or not a torch file", "flip in tensor data": "fails its CRC check",
                "flip in the pickle": "fails its CRC check", "only a format": "lacks task, dims, model",
                "foreign file": "is not a robot_rl PPO checkpoint", "text file": "truncated or not a torch file",
                "folder": "is not a file", "missing": "does not exist",
                "checksum mismatch": "do not match the checksum"}[damage]
    assert expected in message


def test_write_failure_leaves_nothing_behind_and_says_why(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "model_2.pt"

    def full_disk(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(torch, "save", full_disk)
    monkeypatch.setattr("shutil.disk_usage", lambda p: type("U", (), {"free": 1 << 20})())
    with pytest.raises(WriteError, match=r"cannot write .*model_2.pt: the disk is full \(1 MiB free\)"):
        write_checked(path, {"format": "x"})
    assert list(tmp_path.iterdir()) == []


def test_unreadable_payloads_of_any_format(tmp_path: Path) -> None:
    path = write_checked(tmp_path / "state.pt", {"hinf": {"w": torch.ones(2)}})
    assert torch.equal(read_checked(path, None, "state")["hinf"]["w"], torch.ones(2))
    with pytest.raises(CorruptFileError, match="is not a PPO checkpoint \\(format None, expected robot_rl.ppo/1\\)"):
        read_checked(path, "robot_rl.ppo/1", "PPO checkpoint")


def test_signals_wait_until_the_file_is_written() -> None:
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda *_: seen.append("handled"))
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            seen.append("written")
        seen.append("after")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == ["written", "handled", "after"]
