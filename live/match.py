"""A simulated football match, as the score updates of a `live:` stream (docs/live-scores.md).

Pure and seeded: `play_match` returns the whole timeline up front, so tests check a match
without a clock and `simulate_match` only paces and publishes it. Every update carries the
full state (a page that joins late needs only the latest one); `event` is there only when
something happened.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

HALF_MINUTES = 45
# Rates per team and minute, near top-flight averages: 2.7 goals, 4 yellows and 0.15
# straight reds a match.
GOAL_RATE = 1.35 / 90
YELLOW_RATE = 2.0 / 90
STRAIGHT_RED_RATE = 0.075 / 90
#: Each player a side is missing scales its goal chance by this (and the opponent's up).
SHORT_HANDED = 0.75
#: Wall-time minutes between the halves: the real fifteen would bore a demo.
HALF_TIME_BREAK = 3.0
#: Shirt numbers that score more often than the rest.
FORWARDS = (7, 9, 10, 11)


@dataclass(frozen=True, slots=True)
class Update:
    """One score update: when to send it and the message `data` to send."""

    at: float  # minutes after kick-off on the wall-time axis (half-time break included)
    data: dict[str, Any]


@dataclass
class _Side:
    name: str
    goals: int = 0
    booked: set[int] = field(default_factory=set)
    sent_off: set[int] = field(default_factory=set)

    def on_pitch(self) -> list[int]:
        return [n for n in range(2, 12) if n not in self.sent_off]  # outfield shirts 2..11


def clock(minute: int, second: int, limit: int) -> str:
    """`67:00`, or `45+2:30` in stoppage time past `limit` minutes."""
    if minute >= limit and (minute, second) != (limit, 0):
        return f"{limit}+{minute - limit}:{second:02d}"
    return f"{minute:02d}:{second:02d}"


class _Match:
    def __init__(self, home: str, away: str, rng: random.Random) -> None:
        self.home, self.away = _Side(home), _Side(away)
        self.rng = rng
        self.updates: list[Update] = []
        self.status = "first half"
        self.clock = clock(0, 0, HALF_MINUTES)

    def state(self) -> dict[str, Any]:
        return {
            "home": self.home.name,
            "away": self.away.name,
            "score": [self.home.goals, self.away.goals],
            "clock": self.clock,
            "status": self.status,
        }

    def send(self, at: float, event: str | None = None) -> None:
        data = self.state()
        if event is not None:
            data["event"] = event
        self.updates.append(Update(round(at, 4), data))

    def goal_chance(self, side: _Side, other: _Side) -> float:
        return GOAL_RATE * SHORT_HANDED ** len(side.sent_off) / SHORT_HANDED ** len(other.sent_off)

    def minute_events(self, side: _Side, other: _Side) -> list[tuple[bool, str, int, bool]]:
        """What `side` does in one minute, as (is a goal, text, player, is a red card);
        cards count at once."""
        rng, events = self.rng, []
        if rng.random() < self.goal_chance(side, other):
            players = side.on_pitch()
            scorer = rng.choices(players, [3 if n in FORWARDS else 1 for n in players])[0]
            events.append((True, f"Goal! {side.name} (#{scorer})", scorer, False))
        if rng.random() < YELLOW_RATE:
            player = rng.choice(side.on_pitch())
            if player in side.booked:
                side.sent_off.add(player)
                events.append((False, f"Red card: {side.name} #{player} (second yellow)", player, True))
            else:
                side.booked.add(player)
                events.append((False, f"Yellow card: {side.name} #{player}", player, False))
        elif rng.random() < STRAIGHT_RED_RATE:
            player = rng.choice(side.on_pitch())
            side.sent_off.add(player)
            events.append((False, f"Red card: {side.name} #{player}", player, True))
        return events

    def play_half(self, start_at: float, first_minute: int, limit: int, stoppage: int) -> float:
        """Play up to `limit + stoppage` minutes; returns the wall-time minute it ended."""
        for minute in range(first_minute, limit + stoppage):
            at = start_at + minute - first_minute
            drawn: list[tuple[int, bool, str, int, bool, _Side]] = []
            for side, other in ((self.home, self.away), (self.away, self.home)):
                for goal, text, player, red in self.minute_events(side, other):
                    drawn.append((self.rng.randrange(1, 60), goal, text, player, red, side))
            off_now: set[tuple[str, int]] = set()  # sent off earlier in this very minute
            for second, goal, text, player, red, side in sorted(drawn, key=lambda d: d[0]):
                if goal and (side.name, player) in off_now:
                    continue  # the goal was drawn with the minute, but the red card came first
                if red:
                    off_now.add((side.name, player))
                side.goals += goal  # in time order, so each update's score is the score then
                self.clock = clock(minute, second, limit)
                self.send(at + second / 60, text)
            self.clock = clock(minute + 1, 0, limit)
            self.send(at + 1)
        return start_at + limit + stoppage - first_minute

    def score_line(self) -> str:
        return f"{self.home.name} {self.home.goals}-{self.away.goals} {self.away.name}"


def play_match(home: str, away: str, seed: int) -> list[Update]:
    """The updates of one whole match, kick-off to full time, the same for the same seed."""
    match = _Match(home, away, random.Random(seed))
    match.send(0.0, f"Kick-off: {home} v {away}")
    ended = match.play_half(0.0, 0, HALF_MINUTES, match.rng.randint(1, 3))
    match.status, match.clock = "half time", clock(HALF_MINUTES, 0, HALF_MINUTES)
    match.send(ended, f"Half time: {match.score_line()}")
    restart = ended + HALF_TIME_BREAK
    match.status = "second half"
    match.send(restart, "Second half under way")
    ended = match.play_half(restart, HALF_MINUTES, 2 * HALF_MINUTES, match.rng.randint(2, 6))
    match.status, match.clock = "full time", clock(2 * HALF_MINUTES, 0, 2 * HALF_MINUTES)
    match.send(ended, f"Full time: {match.score_line()}")
    return match.updates
