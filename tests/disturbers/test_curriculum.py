"""The privileged-action curriculum: when it advances, and that it ends at zero privilege."""

from __future__ import annotations

import pytest
import torch

from robot_rl.disturbers.privileged import Curriculum


def finish(c: Curriculum, episodes: int, successes: int) -> None:
    done = torch.ones(episodes, dtype=torch.bool)
    success = torch.arange(episodes) < successes
    c.observe(done, success)


def test_schedule_advances_on_success_and_reaches_zero() -> None:
    c = Curriculum(levels=4, threshold=0.6, min_episodes=10)
    scales = [c.scale]
    while not c.done:
        finish(c, 10, 7)
        assert c.advance()
        scales.append(c.scale)
    assert scales == [1.0, 0.75, 0.5, 0.25, 0.0]
    finish(c, 10, 10)
    assert not c.advance() and c.scale == 0.0  # nothing below zero


def test_schedule_waits_for_enough_episodes_and_for_the_threshold() -> None:
    c = Curriculum(levels=2, threshold=0.6, min_episodes=10)
    finish(c, 9, 9)
    assert not c.advance()          # too few episodes, although all succeeded
    finish(c, 11, 0)
    assert not c.advance()          # the last 10: 0 successes
    assert c.level == 0 and c.success_rate == 0.0
    finish(c, 4, 4)
    assert not c.advance()          # the last 10: 4 successes
    assert c.success_rate == pytest.approx(0.4)
    finish(c, 2, 2)                 # early failures leave the window: 6 of the last 10
    assert c.advance() and c.level == 1
    assert c.episodes == 0 and len(c.recent) == 0  # counting restarts at the new level


def test_unfinished_episodes_do_not_count_and_state_round_trips() -> None:
    c = Curriculum(levels=3, threshold=0.5, min_episodes=4)
    c.observe(torch.tensor([False, True, True]), torch.tensor([True, False, True]))
    assert c.episodes == 2 and c.successes == 1
    other = Curriculum(levels=3, threshold=0.5, min_episodes=4)
    other.load_state_dict(c.state_dict())
    assert other.state_dict() == c.state_dict() and list(other.recent) == [False, True]


def test_bad_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold in"):
        Curriculum(levels=2, threshold=1.5, min_episodes=1)


def test_counts_from_all_processes_decide_the_level() -> None:
    c = Curriculum(levels=2, threshold=0.5, min_episodes=10)
    finish(c, 2, 2)                          # this process alone: too few episodes
    assert not c.advance((20, 10, 4))        # all processes: 4 of the last 10 succeeded
    assert c.advance((20, 10, 5)) and c.level == 1


def test_explicit_schedule_is_followed_to_zero() -> None:
    c = Curriculum(levels=4, threshold=0.6, min_episodes=10, schedule=[1.0, 0.5, 0.25, 0.12, 0.06, 0.0])
    assert c.levels == 5                     # the schedule replaces ``levels``
    scales = [c.scale]
    while not c.done:
        finish(c, 10, 6)
        assert c.advance()
        scales.append(c.scale)
    assert scales == [1.0, 0.5, 0.25, 0.12, 0.06, 0.0]
    finish(c, 10, 10)
    assert not c.advance() and c.scale == 0.0


def test_schedule_may_start_below_one_and_round_trips_by_level() -> None:
    c = Curriculum(levels=1, threshold=0.5, min_episodes=2, schedule=(0.4, 0.1, 0.0))
    finish(c, 2, 1)
    assert c.advance() and c.scale == 0.1
    other = Curriculum(levels=1, threshold=0.5, min_episodes=2, schedule=(0.4, 0.1, 0.0))
    other.load_state_dict(c.state_dict())
    assert other.scale == 0.1


@pytest.mark.parametrize(("schedule", "reason"), [
    ([1.0, 0.5], "ending at 0.0"),
    ([0.0], "at least two"),
    ([1.0, 0.5, 0.5, 0.0], "strictly decrease"),
    ([0.5, 1.0, 0.0], "strictly decrease"),
    ([1.5, 0.5, 0.0], r"in \[0, 1\]"),
])
def test_bad_explicit_schedules_are_refused_naming_the_key(schedule: list[float], reason: str) -> None:
    with pytest.raises(ValueError, match=f"robust.privileged.schedule.*{reason}"):
        Curriculum(levels=4, threshold=0.6, min_episodes=10, schedule=schedule)


def test_episodes_begun_at_an_earlier_level_do_not_count() -> None:
    c = Curriculum(levels=2, threshold=0.5, min_episodes=2)
    started = torch.zeros(3, dtype=torch.long)
    c.observe(torch.tensor([True, True, False]), torch.tensor([True, True, False]), started)
    assert c.advance() and c.level == 1
    started[:2] = c.level                   # worlds 0 and 1 restarted at level 1; world 2 is mid-episode
    c.observe(torch.tensor([False, False, True]), torch.tensor([False, False, True]), started)
    assert c.episodes == 0                  # world 2's success came with level 0's privileges
    c.observe(torch.tensor([True, True, False]), torch.tensor([False, True, False]), started)
    assert c.episodes == 2 and c.successes == 1 and c.advance()
