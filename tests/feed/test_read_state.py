"""The read position's merge rule, as a pure function (feed/read_state.py)."""

from __future__ import annotations

from feed.read_state import Position, merge


def test_first_position_is_kept() -> None:
    assert merge(None, Position("e1", 3), "e1", 5) == Position("e1", 3)


def test_position_only_moves_forward() -> None:
    assert merge(Position("e1", 4), Position("e1", 2), "e1", 5) == Position("e1", 4)
    assert merge(Position("e1", 4), Position("e1", 5), "e1", 5) == Position("e1", 5)


def test_position_in_a_new_epoch_replaces_one_in_a_lost_epoch() -> None:
    assert merge(Position("old", 900), Position("new", 1), "new", 1) == Position("new", 1)


def test_position_in_another_epoch_changes_nothing() -> None:
    assert merge(Position("e1", 2), Position("old", 9), "e1", 5) == Position("e1", 2)
    assert merge(None, Position("old", 9), "e1", 5) is None


def test_position_past_the_latest_seq_is_capped() -> None:
    assert merge(Position("e1", 2), Position("e1", 99), "e1", 5) == Position("e1", 5)
