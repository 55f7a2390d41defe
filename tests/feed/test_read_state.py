"""The read position's merge rule, as a pure function, and first writes that race
(feed/read_state.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from feed import read_state
from feed.models import ReadPosition
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


def _first_row_appears_after_the_look(person: str, seq: int) -> Callable[..., Any]:
    """A query wrapper that inserts another request's first row right after `_advance`
    looked for one and found none: the interleaving of two tabs marking read at once."""
    fired: list[str] = []

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if not fired and sql.lstrip().upper().startswith("SELECT") and "feed_readposition" in sql:
            fired.append(sql)
            ReadPosition.objects.create(person=person, epoch="e1", seq=seq)
        return result

    wrapper.fired = fired  # type: ignore[attr-defined]
    return wrapper


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("theirs", "mine", "kept", "moved"), [(5, 3, 5, False), (2, 3, 3, True)])
def test_a_first_row_inserted_meanwhile_is_merged_not_overwritten(theirs: int, mine: int, kept: int, moved: bool) -> None:
    person = "race" + uuid.uuid4().hex[:8]
    wrapper = _first_row_appears_after_the_look(person, theirs)
    with connection.execute_wrapper(wrapper):
        answer = read_state._advance(person, Position("e1", mine), "e1", 9)
    assert wrapper.fired  # type: ignore[attr-defined]
    assert answer == (Position("e1", kept), moved)
    assert read_state._load(person) == Position("e1", kept)
    assert ReadPosition.objects.filter(person=person).count() == 1
