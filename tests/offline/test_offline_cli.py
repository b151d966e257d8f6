"""record -> label -> offline-train end to end on small panda_reach data, through ``robot-rl``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.cli.main import main
from robot_rl.data.dataset import Dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("data") / "reach"
    code = main(["record", "--task", "panda_reach", "--episodes", "4", "--mix", "expert=2,noisy=1,failed=1",
                 "--num-envs", "4", "--image-size", "24", "24", "--out", str(out)])
    torch.set_num_threads(threads)
    assert code == 0
    return out


def test_record_writes_every_column(dataset: Path) -> None:
    ds = Dataset(dataset, robot="panda")
    assert ds.task == "panda_reach" and len(ds.episodes) == 4
    assert ds.info["robot_rl"]["qualities"] == ["expert", "expert", "noisy", "failed"]
    steps = len(ds) // 4
    assert ds.episode_index().tolist() == sum(([e] * steps for e in range(4)), [])
    assert ds.column("observation.policy").shape == (len(ds), 32)
    assert ds.column("observation.privileged").shape == (len(ds), 39)
    assert ds.images("front").shape == (len(ds), 24, 24, 3)
    np.testing.assert_array_equal(ds.column("action"), ds.column("policy_action"))
    assert not ds.column("intervention").any()
    progress = ds.column("next.progress").reshape(4, steps)
    assert progress[:2, -1].min() > 0.9  # the expert reacher ends at the target
    # progress before a step is the progress after the previous one
    np.testing.assert_allclose(ds.column("observation.progress").reshape(4, steps)[:, 1:], progress[:, :-1])


def test_record_rejects_bad_mix(dataset: Path, tmp_path: Path, capsys) -> None:
    code = main(["record", "--task", "panda_reach", "--episodes", "3", "--mix", "expert=2", "--out",
                 str(tmp_path / "x")])
    assert code == 2 and "--mix counts sum to 2, but --episodes is 3" in capsys.readouterr().err


def test_label_writes_one_reward_per_transition(dataset: Path, tmp_path: Path) -> None:
    launch = tmp_path / "label.yaml"
    launch.write_text("module: preference\n"
                      "options: {ensemble_size: 1, max_epochs: 2, channels: [4], strides: [2], hidden: 8}\n"
                      "labelled_fraction: 0.5\nlabels: 64\n")
    assert main(["label", str(dataset), "--reward", str(launch), "--column", "next.reward.test"]) == 0
    ds = Dataset(dataset)
    t = ds.transitions(reward="next.reward.test")
    assert t.reward.shape == (len(ds),) and torch.isfinite(t.reward).all()
    assert t.reward.std() > 0


def test_label_with_a_state_input_model_learns_from_the_progress_of_states(dataset: Path, tmp_path: Path) -> None:
    from robot_rl.offline.label import LabelConfig, label_dataset

    cfg = LabelConfig(module="preference", options={"inputs": "state", "state_dim": 32, "ensemble_size": 2},
                      labelled_fraction=0.5, labels=400, label_flip=0.0)
    report = label_dataset(dataset, cfg, column="next.reward.state", progress_bar=False)
    ds = Dataset(dataset)
    reward, progress = ds.column("next.reward.state"), ds.column("next.progress")
    assert reward.shape == (len(ds),) and report["fit"]["pairs"] == 400
    # the fitted model ranks the labelled expert frames by progress, and scores other episodes too
    assert report["fit"]["accuracy"] > 0.8
    assert np.corrcoef(reward, progress)[0, 1] > 0.5
    with pytest.raises(Exception, match="missing column 'observation.nothing'"):
        label_dataset(dataset, LabelConfig(module="preference", state_column="observation.nothing",
                                           options={"inputs": "state", "state_dim": 32}),
                      column="next.reward.none", progress_bar=False)


def test_offline_train_writes_a_run(dataset: Path, tmp_path: Path) -> None:
    from robot_rl.training.export import load_policy

    code = main(["offline-train", str(dataset), "--algo", "iql", "--budget.updates", "40", "--eval.episodes", "2",
                 "--eval.interim-episodes", "0", "--eval.every", "20", f"--root={tmp_path}", "--progress_bar=false",
                 "--threads", "2"])
    assert code == 0
    assert torch.get_num_threads() == 2  # the updates ran with the configured threads
    (run,) = (tmp_path / "panda_reach").iterdir()
    for name in ("config.yaml", "metrics.csv", "curves.png", "eval.json", "policy.pt"):
        assert (run / name).is_file(), name
    assert len(list((run / "checkpoints").glob("model_40.pt"))) == 1
    assert json.loads((run / "eval.json").read_text())["episodes"] == 2
    policy, meta = load_policy(run / "policy.pt")
    assert meta["task"] == "panda_reach" and meta["observation_group"] == "policy"
    assert policy(torch.zeros(3, 32)).shape == (3, 8)


def test_offline_train_names_a_missing_reward_column(dataset: Path, tmp_path: Path, capsys) -> None:
    code = main(["offline-train", str(dataset), "--reward", "next.reward.nope", f"--root={tmp_path}"])
    assert code == 2 and "missing column 'next.reward.nope'" in capsys.readouterr().err


@pytest.mark.parametrize(("processes", "n_step", "noise_beta"), [("one", 1, 0.0), ("actor_learner", 3, 1.0)])
def test_finetune_from_demos_writes_a_run(dataset: Path, tmp_path: Path, processes: str, n_step: int,
                                          noise_beta: float) -> None:
    from robot_rl.training.export import load_policy

    code = main(["finetune", str(dataset), "--task", "panda_reach", "--budget.env-steps", "48", "--num-envs", "4",
                 "--sac.warmup", "8", "--sac.utd", "1", "--sac.ensemble", "4", "--sac.demo-episodes", "2",
                 "--sac.n-step", str(n_step), "--sac.noise-beta", str(noise_beta),
                 "--sac.processes", processes, "--sac.weight-sync", "2", "--net.hidden", "[32, 32]",
                 "--net.batch-size", "32", "--eval.episodes", "2", "--eval.interim-episodes", "0",
                 "--eval.every", "16", f"--root={tmp_path}", "--progress_bar=false"])
    assert code == 0
    (run,) = (tmp_path / "panda_reach").iterdir()
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("env_steps") and [r.split(",")[0] for r in rows[1:]] == ["4", "16", "32", "48"]
    assert float(rows[-1].split(",")[rows[0].split(",").index("loss/critic")]) > 0  # updates ran
    replay = torch.load(run / "checkpoints" / "replay.pt", weights_only=True)
    # 12 steps of 4 worlds: with n-step transitions the last n - 1 of each world are still open.
    assert replay["online"]["size"] == 48 - 4 * (n_step - 1)
    assert replay["online"]["steps"].max() == replay["demos"]["steps"].max() == n_step
    policy, meta = load_policy(run / "policy.pt")
    assert policy(torch.zeros(2, 32)).shape == (2, 8)
    assert json.loads((run / "eval.json").read_text())["episodes"] == 2


def test_a_dataset_recorded_with_ee_actions_is_trained_and_fine_tuned_with_them(tmp_path: Path, capsys) -> None:
    from robot_rl.training.export import load_policy

    data = tmp_path / "reach_ee"
    assert main(["record", "--task", "panda_reach", "--episodes", "2", "--num-envs", "2", "--image-size", "16", "16",
                 "--task-set", "action_space=ee", "--out", str(data)]) == 0
    ds = Dataset(data)
    assert ds.task_overrides == {"action_space": "ee"}
    assert ds.column("action").shape == (len(ds), 4) and ds.column("observation.policy").shape == (len(ds), 28)
    assert ds.column("next.progress").reshape(2, -1)[:, -1].min() > 0.9  # the expert reaches in ee actions too
    code = main(["finetune", str(data), "--budget.env-steps", "16", "--num-envs", "2", "--sac.warmup", "4",
                 "--sac.utd", "1", "--sac.ensemble", "2", "--sac.demo-episodes", "2", "--net.hidden", "[16, 16]",
                 "--net.batch-size", "8", "--eval.episodes", "1", "--eval.interim-episodes", "0",
                 f"--root={tmp_path / 'runs'}", "--progress_bar=false"])
    assert code == 0
    (run,) = (tmp_path / "runs" / "panda_reach").iterdir()
    policy, meta = load_policy(run / "policy.pt")
    assert meta["task_config"]["action_space"] == "ee" and policy(torch.zeros(1, 28)).shape == (1, 4)
    # asking for the other action space than the data names the column that does not fit
    code = main(["offline-train", str(data), "--algo", "bc", "--task-overrides.action-space", "joint",
                 f"--root={tmp_path / 'runs'}"])
    assert code == 2 and "column 'observation.policy' has 28 values per frame but panda_reach observes 32" \
        in capsys.readouterr().err
    assert main(["record", "--task", "panda_reach", "--episodes", "1", "--task-set", "ee", "--out",
                 str(tmp_path / "x")]) == 2
    assert "--task-set 'ee': write KEY=VALUE" in capsys.readouterr().err


def test_offline_train_names_a_dataset_of_another_task(dataset: Path, tmp_path: Path, capsys) -> None:
    code = main(["offline-train", str(dataset), "--task", "panda_push", f"--root={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2 and "column 'observation.policy' has 32 values per frame but panda_push observes 42" in err


def test_label_imputes_the_task_reward_from_a_share_of_the_frames(dataset: Path, tmp_path: Path) -> None:
    from robot_rl.offline.label import LabelConfig, label_dataset

    cfg = LabelConfig(module="imputed", options={"inputs": "state", "state_dim": 32, "max_epochs": 200},
                      progress_column="next.reward", label_unit="frames", labelled_fraction=0.3)
    report = label_dataset(dataset, cfg, column="next.reward.imputed", progress_bar=False)
    ds = Dataset(dataset)
    assert report["labelled_frames"] == round(0.3 * len(ds)) == report["fit"]["frames"]
    imputed, reward = ds.column("next.reward.imputed"), ds.column("next.reward")
    assert imputed.shape == (len(ds),)
    # regressed on 30% of the frames, it follows the task's reward on the other 70% too
    assert report["spearman_unlabelled"] > 0.8
    assert np.corrcoef(imputed, reward)[0, 1] > 0.8


def test_label_with_actions_scores_each_transition_as_its_own_reward(dataset: Path, tmp_path: Path) -> None:
    from robot_rl.data.dataset import DatasetError
    from robot_rl.offline.label import LabelConfig, label_dataset
    from robot_rl.rewards.imputed import ImputedReward

    save = tmp_path / "imputed.pt"
    cfg = LabelConfig(module="imputed", options={"inputs": "state", "state_dim": 32 + 8, "max_epochs": 200},
                      with_action=True, progress_column="next.reward", label_unit="frames", labelled_fraction=0.3,
                      save=str(save))
    report = label_dataset(dataset, cfg, column="next.reward.transition", progress_bar=False)
    ds = Dataset(dataset)
    written = ds.column("next.reward.transition")
    # row t's reward is the model's score of (observation t, action t), written where it was scored
    inputs = torch.as_tensor(np.concatenate([ds.column("observation.policy"), ds.column("action")], 1))
    expected = ImputedReward(checkpoint=str(save)).score(None, inputs).reward.numpy()
    np.testing.assert_allclose(written, expected, rtol=1e-5, atol=1e-6)
    assert report["spearman_unlabelled"] > 0.8  # against next.reward as it stands, not moved a frame
    with pytest.raises(DatasetError, match="with_action appends actions to states, but preference reads camera"):
        label_dataset(dataset, LabelConfig(module="preference", with_action=True), column="next.reward.x",
                      progress_bar=False)


def test_label_refuses_to_score_with_a_model_nothing_trained(dataset: Path) -> None:
    from robot_rl.data.dataset import DatasetError
    from robot_rl.offline.label import LabelConfig, label_dataset

    cfg = LabelConfig(module="imputed", options={"inputs": "state", "state_dim": 32}, label_unit="frames",
                      labelled_fraction=0.0001)
    with pytest.raises(DatasetError, match="labelled_fraction 0.0001 labels no frames .* untrained weights"):
        label_dataset(dataset, cfg, column="next.reward.untrained", progress_bar=False)
    assert "next.reward.untrained" not in Dataset(dataset).features  # nothing written


def _finetune_args(tmp_path: Path) -> list[str]:
    return ["--task", "panda_reach", "--num-envs", "4", "--sac.warmup", "8", "--sac.utd", "1", "--sac.ensemble", "4",
            "--sac.demo-episodes", "2", "--net.hidden", "[32, 32]", "--net.batch-size", "32", "--eval.episodes", "2",
            "--eval.interim-episodes", "0", "--eval.every", "16", "--checkpoint-every", "16", f"--root={tmp_path}",
            "--progress_bar=false"]


def test_finetune_resumes_from_its_newest_checkpoint_with_the_replay_buffers(dataset: Path, tmp_path: Path,
                                                                              capsys) -> None:
    from robot_rl.configs import load
    from robot_rl.configs.offline import OfflineConfig
    from robot_rl.offline.finetune import FinetuneTrainer

    assert main(["finetune", str(dataset), "--budget.env-steps", "40", *_finetune_args(tmp_path)]) == 0
    (run,) = (tmp_path / "panda_reach").iterdir()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["model_16.pt", "model_32.pt", "model_40.pt",
                                                                        "replay.pt"]
    saved = torch.load(run / "checkpoints" / "model_40.pt", weights_only=True)
    replay = torch.load(run / "checkpoints" / "replay.pt", weights_only=True)
    assert saved["env_steps"] == 40 and replay["env_steps"] == 40 and replay["online"]["size"] == 40

    # what --resume restores: the networks and optimisers, the generator, both buffers, the counters
    trainer = FinetuneTrainer(load(OfflineConfig, run / "config.yaml"), resume=run)
    assert trainer.env_steps == 40 and trainer.next_eval == saved["next_eval"] == 48
    torch.testing.assert_close(trainer.algo.state_dict(), saved["state"])
    assert torch.equal(trainer.learner.generator.get_state(), saved["generator"])
    for name in ("online", "demos"):
        torch.testing.assert_close(getattr(trainer.learner, name).state_dict(), replay[name])
    assert main(["finetune", "--resume", str(run), "--budget.env-steps", "64"]) == 2  # the trainer holds the run
    assert f"{run} is in use by another process (pid {os.getpid()})" in capsys.readouterr().err
    trainer.close()

    assert main(["finetune", "--resume", str(run), "--budget.env-steps", "64", "--progress_bar=false"]) == 0
    rows = [r.split(",") for r in (run / "metrics.csv").read_text().splitlines()]
    assert [r[0] for r in rows[1:]] == ["4", "16", "32", "48", "64"]  # the same file, continued
    assert "model_64.pt" in {p.name for p in (run / "checkpoints").iterdir()}
    assert torch.load(run / "checkpoints" / "replay.pt", weights_only=True)["online"]["size"] == 64

    assert main(["finetune", "--resume", str(run), "--budget.env-steps", "64"]) == 2
    assert "already has 64 env steps" in capsys.readouterr().err
    (run / "checkpoints" / "replay.pt").unlink()
    assert main(["finetune", "--resume", str(run), "--budget.env-steps", "80"]) == 2
    assert "no replay buffers for model_64.pt" in capsys.readouterr().err
    assert main(["finetune", "--resume", str(tmp_path), "--budget.env-steps", "80"]) == 2
    assert "no config.yaml there" in capsys.readouterr().err


def test_a_killed_finetune_saves_a_checkpoint_to_resume_from(dataset: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    # evaluations every 4 steps show the run is learning; checkpoints only on the way out
    args = [*_finetune_args(tmp_path), "--eval.every", "4", "--checkpoint-every", "0"]
    proc = subprocess.Popen([sys.executable, "-m", "robot_rl.cli.main", "finetune", str(dataset),
                             "--budget.env-steps", "1000000", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "MUJOCO_GL": "egl"}, text=True)
    try:
        deadline = time.monotonic() + 180
        metrics = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = list((tmp_path / "panda_reach").glob("*/metrics.csv"))
            if found and len(found[0].read_text().splitlines()) >= 4:  # updates are running
                metrics = found[0]
                break
            time.sleep(0.2)
        assert metrics is not None, proc.communicate(timeout=30)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "continue with: robot-rl finetune --resume" in err
    checkpoints = {p.name for p in (metrics.parent / "checkpoints").iterdir()}
    assert "replay.pt" in checkpoints and any(n.startswith("model_") and n != "model_0.pt" for n in checkpoints)
