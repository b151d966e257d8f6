"""Keyboard teleoperation in simulation: held keys move the tip, o/c set the gripper."""

from __future__ import annotations

import pytest
import torch

from robot_rl.envs import make
from robot_rl.teleop import HeldKeys


def test_held_keys_move_the_tip_and_set_the_gripper() -> None:
    from robot_rl_sim.scripted import KeyboardArm

    env = make("panda_push", num_envs=1, seed=0)
    env.reset(seed=0)
    now = [0.0]
    keys = HeldKeys(hold_s=0.1)
    arm = KeyboardArm(env, keys, clock=lambda: now[0], speed=0.2)

    def drive(key: str | None, steps: int) -> torch.Tensor:
        start = env.sim.sensor("ee_pos")[0].clone()
        for _ in range(steps):
            now[0] += env.control_dt
            if key:
                keys.press(key, now[0])  # a held key repeats
            env.step(arm.act())
        return env.sim.sensor("ee_pos")[0] - start

    moved = drive("w", 10)  # 10 steps at 0.2 m/s x 0.05 s: 10 cm asked along +x
    assert 0.05 < float(moved[0]) < 0.12 and float(moved[1:].abs().max()) < 0.02
    moved = drive("r", 5)
    assert float(moved[2]) > 0.025 and float(moved[:2].abs().max()) < 0.02
    drive(None, 3)  # let the motion settle
    still = drive(None, 10)  # no key held: the arm holds its tip
    assert float(still.abs().max()) < 0.01
    assert float(arm.act()[0, 7]) == 1.0
    keys.press("c", now[0])
    assert float(arm.act()[0, 7]) == -1.0
    now[0] += 1.0  # the gripper stays closed after the key is released
    assert float(arm.act()[0, 7]) == -1.0
    env.close()


def test_keyboard_drives_one_world() -> None:
    from robot_rl_sim.scripted import KeyboardArm

    env = make("panda_push", num_envs=2)
    with pytest.raises(ValueError, match="drives one world"):
        KeyboardArm(env, HeldKeys())
    env.close()


def test_keyboard_recording_without_a_display_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    from robot_rl.cli.main import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    threads = torch.get_num_threads()
    code = main(["record", "--task", "panda_push", "--episodes", "1", "--source", "keyboard",
                 "--out", str(tmp_path / "mine")])
    torch.set_num_threads(threads)
    assert code == 2 and "needs a display" in capsys.readouterr().err
    assert not (tmp_path / "mine" / "data").exists()
