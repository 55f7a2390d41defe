"""`live.match`: any seed gives a match a scoreboard can trust, kick-off to full time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from live.match import clock, play_match


def goals_so_far(updates: list, team: str) -> int:
    return sum(1 for u in updates if u.data.get("event", "").startswith(f"Goal! {team} "))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_every_update_carries_the_full_state_and_a_consistent_score(seed: int) -> None:
    updates = play_match("Rovers", "United", seed)
    assert updates[0].data["event"] == "Kick-off: Rovers v United"
    last = updates[-1].data
    assert last["status"] == "full time" and last["clock"] == "90:00"
    assert last["event"] == f"Full time: Rovers {last['score'][0]}-{last['score'][1]} United"
    for n, update in enumerate(updates):
        assert set(update.data) - {"event"} == {"home", "away", "score", "clock", "status"}
        assert (update.data["home"], update.data["away"]) == ("Rovers", "United")
        # The score at each update is exactly the goals announced up to it.
        seen = updates[: n + 1]
        assert update.data["score"] == [goals_so_far(seen, "Rovers"), goals_so_far(seen, "United")]
    assert [u.at for u in updates] == sorted(u.at for u in updates)
    statuses = [u.data["status"] for u in updates]
    assert statuses == sorted(statuses, key=["first half", "half time", "second half", "full time"].index)
    assert statuses.count("half time") == statuses.count("full time") == 1


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_a_player_sent_off_gets_no_more_cards_and_no_goals(seed: int) -> None:
    off: set[str] = set()
    for update in play_match("Rovers", "United", seed):
        event = update.data.get("event", "")
        player = event.split(": ", 1)[-1].split(" (")[0] if "card" in event else None
        if event.startswith("Goal! "):
            team, shirt = event[len("Goal! "):].rsplit(" (", 1)
            player = f"{team} {shirt.rstrip(')')}"
            assert player not in off, event
        elif player is not None:
            assert player not in off, event
            if event.startswith("Red card"):
                off.add(player)


def test_the_same_seed_plays_the_same_match_and_seeds_differ() -> None:
    assert play_match("A", "B", 42) == play_match("A", "B", 42)
    finals = {tuple(play_match("A", "B", seed)[-1].data["score"]) for seed in range(40)}
    assert len(finals) > 3


def test_over_many_matches_the_numbers_look_like_football() -> None:
    matches = [play_match("A", "B", seed) for seed in range(300)]
    goals = sum(sum(m[-1].data["score"]) for m in matches) / len(matches)
    events = [u.data.get("event", "") for m in matches for u in m]
    yellows = sum(e.startswith("Yellow card") for e in events) / len(matches)
    reds = sum(e.startswith("Red card") for e in events)
    assert 2.0 < goals < 3.5 and 2.5 < yellows < 5.5 and reds > 0


def test_clock_shows_stoppage_time_past_the_half() -> None:
    assert clock(67, 0, 90) == "67:00"
    assert clock(5, 7, 45) == "05:07"
    assert clock(45, 0, 45) == "45:00"
    assert clock(46, 30, 45) == "45+1:30"
    assert clock(92, 0, 90) == "90+2:00"
