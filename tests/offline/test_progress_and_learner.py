"""Progress filtering (GR-RL) and the online learner's buffers fed from ROS 2 transition records."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from robot_rl.configs.offline import BCConfig, OfflineConfig, SACConfig
from robot_rl.data.dataset import Dataset
from robot_rl.data.lerobot import LeRobotWriter, transition_features
from robot_rl.offline.finetune import OnlineLearner, demo_transitions, n_step_demos, ros_transitions
from robot_rl.offline.trainer import learned_progress_mask, load_dataset, successful_episodes


def write(root: Path, progress: list[list[float]], terminal_last: bool = True,
          success: list[list[bool]] | None = None) -> Dataset:
    writer = LeRobotWriter(root, fps=20, features=transition_features(2, 1, progress=True), robot_type="panda")
    for e, episode in enumerate(progress):
        for t, p in enumerate(episode):
            last = t == len(episode) - 1
            writer.add_frame({"observation.policy": [p, 0.0], "action": [0.0], "policy_action": [0.0],
                              "intervention": False, "next.reward": 0.0, "next.terminated": last and terminal_last,
                              "next.done": last, "next.success": bool(success and success[e][t]),
                              "observation.progress": p, "next.progress": 0.0})
        writer.end_episode()
    return Dataset(root)


def test_progress_filter_keeps_transitions_that_make_progress(tmp_path: Path) -> None:
    # Episode 0 frames: 0.1, 0.3, 0.2, 0.5 -> steps +0.2, -0.1, +0.3, then the terminal last frame.
    # Episode 1 frames: 0.4, 0.4 -> a stall, then a time-out last frame (no successor: dropped).
    ds = write(tmp_path / "ds", [[0.1, 0.3, 0.2, 0.5], [0.4, 0.4]])
    ds.add_column("next.progress.learned", np.array([0.3, 0.2, 0.5, 0.6, 0.4, 0.4]))
    t = ds.transitions()
    done = t.done.clone()
    done[-1] = False  # time-out
    assert learned_progress_mask(ds, done, "observation.progress").tolist() == [True, False, True, True, False, False]
    # next.* column: progress after each step against the previous step's (first step of an episode kept).
    assert learned_progress_mask(ds, done, "next.progress.learned").tolist() == [True, False, True, True, True, False]


def test_success_only_bc_keeps_episodes_that_end_in_success(tmp_path: Path) -> None:
    # Episode 0 ends on the target; episode 1 reaches it and pushes past; episode 2 never does.
    write(tmp_path / "ds", [[0.1, 0.5, 1.0], [0.2, 1.0, 0.6], [0.1, 0.2, 0.3]], terminal_last=False,
          success=[[False, False, True], [False, True, False], [False, False, False]])
    cfg = OfflineConfig(dataset=str(tmp_path / "ds"), algo="bc", bc=BCConfig(success_only=True))
    _, t = load_dataset(cfg)
    assert t.episode.tolist() == [0, 0, 0]
    assert successful_episodes(Dataset(tmp_path / "ds")).tolist() == [0]


def test_demos_cut_after_their_first_success(tmp_path: Path) -> None:
    # Episode 0 succeeds at frame 1 and holds; episode 1 never succeeds; episode 2 succeeds at frame 2
    # and at its last frame (frame 4).
    write(tmp_path / "ds", [[0.0, 0.1, 0.2, 0.3], [1.0, 1.1, 1.2], [2.0, 2.1, 2.2, 2.3, 2.4]], terminal_last=False,
          success=[[False, True, True, True], [False, False, False], [False, False, True, False, True]])
    base = OfflineConfig(dataset=str(tmp_path / "ds"), algo="sac")

    def demo_obs(**sac: int | None) -> list[float]:
        t = demo_transitions(replace(base, sac=SACConfig(**sac)))
        return [round(x, 1) for x in t.obs[:, 0].tolist()]

    assert demo_obs() == [0.0, 0.1, 0.2, 0.3, 1.0, 1.1, 1.2, 2.0, 2.1, 2.2, 2.3, 2.4]
    assert demo_obs(demo_after_success=0) == [0.0, 0.1, 1.0, 1.1, 1.2, 2.0, 2.1, 2.2]
    assert demo_obs(demo_after_success=1) == [0.0, 0.1, 0.2, 1.0, 1.1, 1.2, 2.0, 2.1, 2.2, 2.3]
    # With demo_episodes, only episodes ending in success, each cut after its first success.
    assert demo_obs(demo_episodes=2, demo_after_success=0) == [0.0, 0.1, 2.0, 2.1, 2.2]


def test_ros_records_become_transitions_and_interventions_reach_both_buffers() -> None:
    def record(episode: int, step: int, intervention: bool) -> SimpleNamespace:
        return SimpleNamespace(episode=episode, step=step, observation=np.full(3, 10.0 * episode + step),
                               action=np.full(2, float(step)), intervention=intervention, reward=float(step),
                               done=step == 2)

    records = [record(0, 0, False), record(0, 1, True), record(0, 2, False), record(1, 0, True)]
    out = list(ros_transitions(records))
    assert [o[0][0] for o in out] == [0.0, 1.0, 2.0, 10.0]
    assert [o[3][0] for o in out] == [1.0, 2.0, 2.0, 10.0]  # next observation; an episode's last uses its own
    assert [o[5] for o in out] == [False, True, False, True]

    learner = OnlineLearner(OfflineConfig(sac=SACConfig(ensemble=2, warmup=2, utd=1)), obs_dim=3, action_dim=2)
    obs, action, reward, next_obs, done, flag = (torch.as_tensor(np.array(x)) for x in zip(*out))
    learner.add(obs.float(), action.float(), reward.float(), next_obs.float(), done, flag)
    assert len(learner.online) == 4 and len(learner.demos) == 2
    assert learner.demos.obs[:2, 0].tolist() == [1.0, 10.0]
    assert learner.update()  # warmed up: one RLPD step per environment step added


def test_n_step_learner_stores_each_transition_once_its_steps_are_in(tmp_path: Path) -> None:
    # Demos: episode 0 (4 frames, cut by the time limit) and episode 1 (2 frames, terminal).
    write(tmp_path / "ds", [[0.0, 0.1, 0.2, 0.3], [1.0, 1.1]], terminal_last=False)
    demos = demo_transitions(OfflineConfig(dataset=str(tmp_path / "ds"), algo="sac"))
    demos.reward = torch.arange(6.0)
    demos.done[5] = True
    obs, _, reward, next_obs, done, steps = n_step_demos(demos, 2, gamma=0.5)
    order = obs[:, 0].argsort()  # within an episode, transitions come out as they complete
    assert [round(x, 1) for x in obs[order, 0].tolist()] == [0.0, 0.1, 0.2, 0.3, 1.0, 1.1]
    assert reward[order].tolist() == [0 + 0.5 * 1, 1 + 0.5 * 2, 2 + 0.5 * 3, 3.0, 4 + 0.5 * 5, 5.0]
    assert steps[order].tolist() == [2.0, 2.0, 2.0, 1.0, 2.0, 1.0]
    assert done[order].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    torch.testing.assert_close(next_obs[order, 0], torch.tensor([0.2, 0.3, 0.3, 0.3, 1.1, 1.1]))

    cfg = OfflineConfig(sac=SACConfig(ensemble=2, warmup=1, utd=1, n_step=2, gamma=0.5))
    learner = OnlineLearner(cfg, obs_dim=2, action_dim=1, demos=demos)
    assert len(learner.demos) == 6 and sorted(learner.demos.steps[:6].tolist()) == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    x = torch.tensor([[0.0, 0.0], [5.0, 0.0]])
    with pytest.raises(ValueError, match="ended="):
        learner.add(x, torch.zeros(2, 1), torch.ones(2), x, torch.zeros(2))
    learner.add(x, torch.zeros(2, 1), torch.ones(2), x + 1, torch.zeros(2), torch.tensor([False, True]),
                ended=torch.tensor([False, False]))
    assert len(learner.online) == 0 and learner.pending == 2  # two env steps in, no transition complete yet
    learner.add(x + 1, torch.zeros(2, 1), torch.ones(2), x + 2, torch.zeros(2), ended=torch.tensor([False, True]))
    # World 1's episode ended: both its transitions are in (2 steps and 1); world 0's first is.
    stored = sorted(zip(learner.online.obs[:3, 0].tolist(), learner.online.steps[:3].tolist(),
                        learner.online.reward[:3].tolist()))
    assert stored == [(0.0, 2.0, 1.5), (5.0, 2.0, 1.5), (6.0, 1.0, 1.0)]
    assert len(learner.demos) == 7 and learner.demos.obs[6].tolist() == [5.0, 0.0]  # the intervention, 2 steps
    assert learner.update()


LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "offline"


def test_launch_files_load() -> None:
    from robot_rl.configs import load
    from robot_rl.offline.label import LabelConfig

    paths = sorted(LAUNCH.glob("*.yaml"))
    assert paths
    for path in paths:
        if path.name.startswith("label_"):
            assert load(LabelConfig, path).module in path.stem
        else:  # panda_push_<algo>.yaml, RLPD being SAC's options
            assert load(OfflineConfig, path).algo == {"rlpd": "sac"}.get(path.stem.split("_")[-1],
                                                                          path.stem.split("_")[-1])


def test_frame_and_transition_values_move_one_step_within_episodes() -> None:
    from robot_rl.offline.label import shift_to_next, shift_to_previous

    episode = np.array([0, 0, 0, 1, 1])
    frames = np.array([1.0, 2.0, 3.0, 10.0, 20.0])
    # transition t's reward is the score of frame t+1; an episode's last frame scores itself
    np.testing.assert_array_equal(shift_to_next(frames, episode), [2.0, 3.0, 3.0, 20.0, 20.0])
    # a next.* value of transition t describes frame t+1; an episode's first frame keeps its own
    np.testing.assert_array_equal(shift_to_previous(np.array([2.0, 3.0, 4.0, 20.0, 30.0]), episode),
                                  [2.0, 2.0, 3.0, 20.0, 20.0])
    inner = np.array([False, True, True, False, True])  # frames that follow a transition of their episode
    np.testing.assert_array_equal(shift_to_previous(shift_to_next(frames, episode), episode)[inner], frames[inner])


def test_a_resumed_actor_process_meets_new_episodes() -> None:
    """The actor of the actor-learner split seeds its worlds past the steps the run already took,
    like the single-process loop (``reset(seed=seed + env_steps)``), instead of replaying the
    episodes it started with."""
    import queue
    import threading

    from robot_rl.configs import to_dict
    from robot_rl.envs import make
    from robot_rl.offline.finetune import actor_process

    cfg = OfflineConfig(task="panda_reach", num_envs=2, sac=SACConfig(random_steps=1000), seed=3)
    norm = {"mean": torch.zeros(32), "std": torch.ones(32)}

    def first_observation(start_steps: int) -> np.ndarray:
        out, stop = queue.Queue(), threading.Event()
        actor = threading.Thread(target=actor_process, args=(to_dict(cfg), 32, 8, norm, out, queue.Queue(), stop,
                                                             start_steps))
        actor.start()
        item = out.get(timeout=60)
        stop.set()
        actor.join(timeout=60)
        return item[0]

    def reset_observation(seed: int) -> np.ndarray:
        env = make("panda_reach", num_envs=2, seed=seed)
        obs, _ = env.reset(seed=seed)
        env.close()
        return obs["policy"].numpy()

    np.testing.assert_array_equal(first_observation(0), reset_observation(3))
    np.testing.assert_array_equal(first_observation(40), reset_observation(43))
    assert not np.allclose(reset_observation(3), reset_observation(43))


def test_coloured_noise_makes_the_fine_tuning_loops_actions_change_smoothly(tmp_path: Path) -> None:
    """With ``sac.noise_beta: 2`` (red noise) the actions a world takes move far less from one
    step to the next than with SAC's independent draws; the same policy (no updates: warmup is
    never reached) and seed otherwise."""
    from robot_rl.configs.offline import EvalConfig, NetConfig, OfflineBudget
    from robot_rl.offline.finetune import FinetuneTrainer

    def step_changes(beta: float) -> float:
        cfg = OfflineConfig(task="panda_reach", num_envs=4, seed=2, root=str(tmp_path), progress_bar=False,
                            sac=SACConfig(noise_beta=beta, warmup=10_000, random_steps=0),
                            net=NetConfig(hidden=(32, 32)), budget=OfflineBudget(env_steps=120),
                            eval=EvalConfig(episodes=0, interim_episodes=0), checkpoint_every=0)
        trainer = FinetuneTrainer(cfg)
        trainer.train()
        actions = trainer.learner.online.action[:120].reshape(30, 4, -1)  # step, world, action
        return float((actions[1:] - actions[:-1]).abs().mean())

    white, red = step_changes(0.0), step_changes(2.0)
    assert red < 0.5 * white, (red, white)


def test_the_actor_process_explores_with_the_same_noise() -> None:
    """The actor of the actor-learner split takes ``sac.noise_beta`` too (run in a thread here)."""
    import queue
    import threading

    from robot_rl.algorithms.replay import FixedNorm
    from robot_rl.algorithms.sac import SquashedGaussianActor
    from robot_rl.configs import to_dict
    from robot_rl.configs.offline import NetConfig
    from robot_rl.offline.finetune import actor_process

    torch.manual_seed(0)
    weights = {k: v.numpy() for k, v in SquashedGaussianActor(FixedNorm.identity(32), 32, 8, (32, 32))
               .state_dict().items()}

    def step_changes(beta: float) -> float:
        cfg = OfflineConfig(task="panda_reach", num_envs=2, seed=1, net=NetConfig(hidden=(32, 32)),
                            sac=SACConfig(noise_beta=beta, random_steps=0))
        out, inbox, stop = queue.Queue(), queue.Queue(), threading.Event()
        inbox.put(weights)
        actor = threading.Thread(target=actor_process, args=(to_dict(cfg), 32, 8, {"mean": torch.zeros(32),
                                                                                    "std": torch.ones(32)},
                                                             out, inbox, stop))
        actor.start()
        actions = np.stack([out.get(timeout=60)[1] for _ in range(30)])  # step, world, action
        stop.set()
        actor.join(timeout=60)
        return float(np.abs(np.diff(actions, axis=0)).mean())

    assert step_changes(2.0) < 0.5 * step_changes(0.0)
