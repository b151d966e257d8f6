"""Short CPU learning runs of each mechanism on a point mass (seconds each)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from disturber_toy import PointMass

from robot_rl.configs import BudgetConfig, EnvConfig, LogConfig, PPOConfig, TrainConfig
from robot_rl.configs.train import HInfConfig, PrivilegedConfig, PushConfig, RobustConfig
from robot_rl.disturbers.hinf import HInfDisturber
from robot_rl.disturbers.privileged import PrivilegedActionEnv
from robot_rl.training.checkpoints import restore_model
from robot_rl.training.export import export_policy, load_policy
from robot_rl.training.runner import Trainer


def config(root: Path, env_steps: int, robust: RobustConfig) -> TrainConfig:
    return TrainConfig(
        env=EnvConfig(task="point_mass", num_envs=64),
        algo=PPOConfig(num_steps=16, actor_hidden=(32, 32), critic_hidden=(32, 32), init_noise_std=0.5),
        budget=BudgetConfig(env_steps=env_steps),
        log=LogConfig(root=str(root), progress_bar=False, video=False, tensorboard=False, eval_episodes=64),
        robust=robust)


def metrics(run_dir: str) -> list[dict[str, float]]:
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return [{k: float(v) if v else float("nan") for k, v in row.items()} for row in csv.DictReader(f)]


def test_privileged_curriculum_reaches_zero_and_the_robot_alone_succeeds(tmp_path: Path) -> None:
    cfg = PrivilegedConfig(enabled=True, body="point", max_force=2.0, levels=3, success_threshold=0.5,
                           min_episodes=64)
    robust = RobustConfig(privileged=cfg)

    def factory(_cfg, num_envs=None, seed=None):
        return PrivilegedActionEnv(PointMass(num_envs or 64, gain=1.0, seed=seed or 0), cfg)

    trainer = Trainer(config(tmp_path, 100_000, robust), env_factory=factory)
    summary = trainer.train()
    rows = metrics(summary["run_dir"])
    scales = [r["privileged/scale"] for r in rows]
    assert scales[0] == 1.0 and scales[-1] == 0.0, scales
    assert all(a >= b for a, b in zip(scales, scales[1:]))  # never gives privileges back
    # Evaluated at zero privilege (the factory builds s = 0) with robot actions only:
    assert summary["eval"]["success_rate"] >= 0.8, summary["eval"]
    # The exported file keeps the 2 robot actions of the 5 the actor learned.
    _, model, _ = restore_model(Path(summary["run_dir"]))
    assert model.log_std.numel() == 5
    out = export_policy(model, tmp_path / "policy.pt", {"observation_dim": 4}, -torch.ones(2), torch.ones(2))
    policy, _ = load_policy(out)
    obs = torch.randn(7, 4)
    torch.testing.assert_close(policy(obs), model.action_mean(obs)[:, :2].clamp(-1, 1))


@torch.no_grad()
def mean_cost(policy, disturber_force) -> float:
    """Mean per-step distance from the target over one episode of 64 worlds when
    ``disturber_force(privileged obs) -> float[64, 3]`` pushes the point."""
    env = PointMass(64, gain=1.0, target_radius=0.0, seed=5)
    obs, _ = env.reset(seed=5)
    total = 0.0
    for _ in range(env.max_episode_steps):
        env.sim.apply_wrench("point", torch.cat([disturber_force(obs["privileged"]), torch.zeros(64, 3)], dim=1))
        obs, _, _, _, info = env.step(policy(obs))
        total += float(-info["reward_terms"]["distance"].mean())
    return total / env.max_episode_steps


def test_hinf_disturber_learns_to_push_and_lambda_tracks_the_constraint(tmp_path: Path) -> None:
    # The disturber (up to 1.5 N) is stronger than the actor (1 N) and force is cheap (η = 0.02):
    # pushing steadily one way pays, and the actor cannot keep the constraint, so λ must rise.
    hinf = HInfConfig(enabled=True, body="point", max_force=1.5, eta=0.02, oracle={"distance": 0.0},
                      lambda_lr=0.5, start_iteration=5, lr=1e-3, hidden=(32,), init_noise_std=0.5)

    def factory(_cfg, num_envs=None, seed=None):
        return PointMass(num_envs or 64, gain=1.0, target_radius=0.0, seed=seed or 0)

    trainer = Trainer(config(tmp_path, 60_000, RobustConfig(hinf=hinf)), env_factory=factory)
    summary = trainer.train()
    rows = metrics(summary["run_dir"])
    assert [r["hinf/force_bound"] for r in rows[:6]] == [0.0] * 5 + [1.5]
    assert all(r["hinf/lambda"] == 0.0 for r in rows[:5])
    # λ follows the violation: it grows only in iterations where the constraint was violated.
    for before, after in zip(rows[5:], rows[6:]):
        assert (after["hinf/lambda"] > before["hinf/lambda"]) == (after["hinf/violation"] > 0)
    assert rows[-1]["hinf/lambda"] > 0
    # Against the trained actor, the trained disturber's pushes cost far more than an untrained
    # one's (measured 0.48 m vs 0.16 m mean distance; no pushes: 0.16 m).
    fresh = HInfDisturber(hinf, trainer.cfg.algo, 6, 64, torch.device("cpu"), hinf.oracle,
                          torch.Generator().manual_seed(1))
    policy = trainer.policy()
    trained_cost = mean_cost(policy, trainer.robust.hinf.deterministic_force)
    fresh_cost = mean_cost(policy, fresh.deterministic_force)
    assert trained_cost > 2 * fresh_cost, (trained_cost, fresh_cost)
    assert Path(summary["robust_curves"]).is_file()


@pytest.mark.parametrize("max_force", [0.0, 2.0])
def test_pushes_are_logged_and_off_by_default(tmp_path: Path, max_force: float) -> None:
    robust = RobustConfig(push=PushConfig(max_force=max_force, interval_steps=4, body="point"))
    trainer = Trainer(config(tmp_path, 2 * 64 * 16, robust),
                      env=PointMass(64), env_factory=lambda c, num_envs=None, seed=None: PointMass(num_envs or 64))
    assert (trainer.robust is None) == (max_force == 0.0)
    rows = metrics(trainer.train()["run_dir"])
    if max_force:
        # E‖f‖ for f uniform in [-2, 2]² (the toy ignores z): about 1.53 N, with z 1.91 N
        assert 1.2 < rows[-1]["push/force"] < 2.6
    else:
        assert "push/force" not in rows[-1]
