"""Online preference learning: the query schedule over batched env steps, pair sampling within
episodes, learning a reward from an oracle on a toy image stream, and the RewardWrapper hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl.configs.train import OnlineLearningConfig, RewardModuleConfig
from robot_rl.rewards.compose import RewardWrapper, build_terms
from robot_rl.rewards.labellers.base import LabellerBase
from robot_rl.rewards.metrics import spearman
from robot_rl.rewards.online import OnlinePreferenceLearner
from robot_rl.rewards.preference import PreferenceReward

SIZE = 12


def tiny_reward(**options) -> PreferenceReward:
    return PreferenceReward(ensemble_size=2, channels=(8, 8), strides=(1, 1), hidden=16, shift=0, **options)


def dot_images(progress: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
    """uint8[N, 1, 12, 12, 3]: a white dot whose column is the progress; channel 2 holds ``code``."""
    n = len(progress)
    images = torch.zeros(n, 1, SIZE, SIZE, 3, dtype=torch.uint8)
    columns = (progress.clamp(0, 1) * (SIZE - 1)).round().long()
    images[torch.arange(n), 0, SIZE // 2, columns] = 255
    if code is not None:
        images[:, 0, 0, 0, 2] = code.to(torch.uint8)
    return images


def test_queries_follow_the_schedule_across_batched_steps() -> None:
    # 10 worlds per step: the first step (0 -> 10) crosses query points 4 and 8 at once.
    cfg = OnlineLearningConfig(first_step=4, every=4, per_update=3, budget=15, candidates=2, epochs_per_update=1)
    learner = OnlinePreferenceLearner(tiny_reward(), cfg, "goal", num_envs=10)
    gen = torch.Generator().manual_seed(0)
    asked = []
    for _ in range(4):  # env steps 10, 20, 30, 40: points 4, 8 | 12, 16, 20 | 24, 28 | 32, 36, 40
        progress = torch.rand(10, generator=gen)
        learner.observe(dot_images(progress), progress, torch.zeros(10, dtype=torch.bool))
        asked.append(learner.asked)
    # 3 pairs per point until the budget of 15 (5 points) is spent.
    assert asked == [6, 15, 15, 15]
    assert learner.metrics()["labels"] == learner.kept > 0


def test_same_episode_pairs_never_mix_episodes() -> None:
    cfg = OnlineLearningConfig(labeller="http", first_step=6, every=6, per_update=5, budget=100, candidates=3,
                               pairs="same_episode", epochs_per_update=1)
    learner = OnlinePreferenceLearner(tiny_reward(), cfg, "goal", num_envs=3)

    class SameCode(LabellerBase):
        """Labels by progress and records whether a pair's episode codes match."""

        def __init__(self) -> None:
            super().__init__()
            self.matches: list[bool] = []

        def _answer(self, a, b, goal):
            from robot_rl.rewards.labellers.base import Answer

            self.matches += (a[:, 0, 0, 0, 2] == b[:, 0, 0, 0, 2]).tolist()
            return [Answer(1.0, "preference") for _ in range(len(a))]

    learner.labeller = SameCode()
    episode = torch.tensor([0, 1, 2])
    for step in range(12):
        done = torch.tensor([step % 2 == 1, step % 3 == 2, False])  # episodes of 2, 3 and 12 steps
        images = dot_images(torch.full((3,), step / 12), episode)
        learner.observe(images, torch.zeros(3), done, views=images)
        episode = torch.where(done, episode.max() + 1 + torch.arange(3), episode)
    assert len(learner.labeller.matches) == 30 and all(learner.labeller.matches)
    with pytest.raises(ValueError, match="judges images"):
        learner.observe(images, torch.zeros(3), torch.zeros(3, dtype=torch.bool))


def test_a_noisy_oracle_teaches_the_reward_online() -> None:
    torch.manual_seed(0)
    cfg = OnlineLearningConfig(labeller_options={"flip_prob": 0.1, "seed": 0}, first_step=64, every=64,
                               per_update=40, budget=400, candidates=4, epochs_per_update=10)
    reward = tiny_reward(learning_rate=1e-2)
    learner = OnlinePreferenceLearner(reward, cfg, "goal", num_envs=16)
    gen = torch.Generator().manual_seed(1)
    for _ in range(48):
        progress = torch.rand(16, generator=gen)
        learner.observe(dot_images(progress), progress, torch.zeros(16, dtype=torch.bool))
    assert learner.asked == 400
    held_out = torch.linspace(0, 1, 30)
    scores = reward.score(dot_images(held_out)).reward.numpy()
    assert spearman(scores, held_out.numpy()) > 0.9
    # The oracle saw every label it gave: the labeller counted 10% flips, no failures.
    assert learner.labeller.counts.failed == 0


def test_reward_wrapper_learns_and_saves(tmp_path) -> None:
    class DotEnv:
        num_envs, device, action_dim = 4, torch.device("cpu"), 1
        obs_dims = {"policy": 1}
        action_low, action_high = -torch.ones(1), torch.ones(1)
        goal, image_cameras, image_size = "move the dot right", ("front",), (SIZE, SIZE)

        def __init__(self) -> None:
            self.gen = torch.Generator().manual_seed(0)

        def step(self, actions):
            progress = torch.rand(4, generator=self.gen)
            obs = {"policy": progress[:, None], "rgb": {"front": dot_images(progress)[:, 0]}}
            info = {"reward_terms": {}, "progress": progress, "final_obs": obs}
            done = torch.zeros(4, dtype=torch.bool)
            return obs, torch.zeros(4), done, done, info

    online = OnlineLearningConfig(first_step=8, every=8, per_update=4, budget=8, epochs_per_update=1)
    cfg = RewardModuleConfig(name="preference", cameras=("front",), image_size=(SIZE, SIZE), online=online,
                             options={"ensemble_size": 2, "channels": [4], "strides": [1], "hidden": 8})
    env = RewardWrapper(DotEnv(), build_terms([cfg], default_camera="front"), task_weight=0.0)
    for _ in range(5):
        env.step(torch.zeros(4, 1))
    metrics = env.learning_metrics()
    assert metrics["reward_learning/preference/asked"] == 8.0
    assert metrics["reward_learning/preference/updates"] == 2.0
    (path,) = env.save_learned(tmp_path)
    loaded = PreferenceReward.load(path)
    images = dot_images(torch.linspace(0, 1, 5))
    assert np.allclose(loaded.score(images).reward, env.terms[0].module.score(images).reward)


def test_online_learning_needs_the_preference_module_and_true_progress() -> None:
    online = OnlineLearningConfig()
    with pytest.raises(ValueError, match="only the preference module learns online"):
        build_terms([RewardModuleConfig(name="progress_critic", online=online)], default_camera="front")
    learner = OnlinePreferenceLearner(tiny_reward(), online, "goal", num_envs=2)
    with pytest.raises(ValueError, match="true progress"):
        learner.observe(dot_images(torch.zeros(2)), None, torch.zeros(2, dtype=torch.bool))


def test_pairs_per_epoch_bounds_the_work_of_an_update() -> None:
    reward = tiny_reward(batch_size=16)
    progress = torch.rand(200, generator=torch.Generator().manual_seed(0))
    a, b = dot_images(progress[:100]), dot_images(progress[100:])
    reward.add_labels(a, b, (progress[100:] > progress[:100]).float())
    reward.update(max_epochs=2, pairs_per_epoch=32)  # 2 passes x 2 batches of 16
    steps = {int(state["step"]) for state in reward.optimizer.state.values()}
    assert steps == {4}
    reward.update(max_epochs=1)  # all 100 pairs: 7 batches
    assert {int(state["step"]) for state in reward.optimizer.state.values()} == {11}


def test_a_state_reward_learns_from_the_oracle_and_trains_in_the_wrapper() -> None:
    class StateEnv:
        """policy observation [progress, distractor]; no cameras at all."""

        num_envs, device, action_dim = 8, torch.device("cpu"), 1
        obs_dims = {"policy": 2}
        action_low, action_high = -torch.ones(1), torch.ones(1)
        goal, image_cameras = "raise the first number", ()

        def __init__(self) -> None:
            self.gen = torch.Generator().manual_seed(0)

        def step(self, actions):
            state = torch.rand(8, 2, generator=self.gen)
            obs = {"policy": state}
            info = {"reward_terms": {}, "progress": state[:, 0].clone(), "final_obs": obs}
            done = torch.zeros(8, dtype=torch.bool)
            return obs, torch.zeros(8), done, done, info

    online = OnlineLearningConfig(first_step=32, every=32, per_update=50, budget=300, epochs_per_update=20,
                                  labeller_options={"flip_prob": 0.1, "seed": 0})
    cfg = RewardModuleConfig(name="preference", online=online, options={
        "inputs": "state", "state_dim": 2, "ensemble_size": 2, "hidden": 32, "learning_rate": 1e-2})
    (term,) = build_terms([cfg], default_camera="front")
    assert term.cameras == () and not term.module.uses_images
    env = RewardWrapper(StateEnv(), [term], task_weight=0.0)
    for _ in range(32):
        env.step(torch.zeros(8, 1))
    assert env.learning_metrics()["reward_learning/preference/asked"] == 300.0
    probe = torch.stack([torch.linspace(0, 1, 20), torch.rand(20)], dim=1)
    assert spearman(term.module.score(None, probe).reward.numpy(), probe[:, 0].numpy()) > 0.9
    with pytest.raises(ValueError, match="state_dim"):
        PreferenceReward(inputs="state")


def test_evaluation_wrappers_adopt_the_learned_model_and_stop_learning() -> None:
    online = OnlineLearningConfig(first_step=1, every=1, per_update=1, budget=100)
    cfg = RewardModuleConfig(name="preference", online=online, options={"inputs": "state", "state_dim": 1})

    class Env:
        num_envs, device, action_dim, obs_dims, goal = 2, torch.device("cpu"), 1, {"policy": 1}, ""
        action_low, action_high, image_cameras = -torch.ones(1), torch.ones(1), ()

    trained = RewardWrapper(Env(), build_terms([cfg], None))
    fresh = RewardWrapper(Env(), build_terms([cfg], None)).adopt_learned(trained)
    assert fresh.terms[0].module is trained.terms[0].module
    assert fresh.learners == {} and fresh.terms[0].online is None
