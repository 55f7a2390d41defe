"""`manage.py simulate_match live:demo`: publish a simulated match at a watchable pace.

The match comes from `live.match` (seeded, so `--seed` replays one); this command only
waits for each update's moment and publishes it as the server, like `manage.py publish`.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from config.interrupt import answer_ctrl_c
from live.match import play_match
from realtime import RealtimeError, parse_stream, publish

#: Wall-time seconds per match minute: a whole match (about 99 minutes with the shortened
#: half-time break) takes about two minutes.
DEFAULT_PACE = 1.2
MAX_TEAM_NAME = 40


def team_name(value: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= MAX_TEAM_NAME:
        raise CommandError(f"team names are 1 to {MAX_TEAM_NAME} characters: {value[:80]!r}")
    return name


class Command(BaseCommand):
    help = "Publish a simulated football match (goals, cards, clock) to a live: stream."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("stream", help="a live: stream, e.g. live:demo")
        parser.add_argument(
            "--pace", type=float, default=DEFAULT_PACE,
            help=f"seconds of wall time per match minute (default {DEFAULT_PACE}; 0 publishes at once)",
        )
        parser.add_argument("--seed", type=int, help="replay the match of this seed (default: a random one, printed)")
        parser.add_argument("--home", default="Rovers", help="home team (default Rovers)")
        parser.add_argument("--away", default="United", help="away team (default United)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            stream = parse_stream(options["stream"])
        except RealtimeError as exc:
            raise CommandError(str(exc)) from None
        if stream.kind != "live":
            raise CommandError(f"simulate_match publishes to live: streams only, not {stream.full!r}")
        pace = options["pace"]
        if not pace >= 0 or pace == float("inf"):
            raise CommandError(f"--pace must be a number of seconds, 0 or more: {pace}")
        home, away = team_name(options["home"]), team_name(options["away"])
        if home == away:
            raise CommandError(f"--home and --away must differ: both are {home!r}")
        seed = options["seed"] if options["seed"] is not None else random.randrange(1_000_000)
        self.stdout.write(f"{home} v {away} on {stream.full}, seed {seed}")
        self.play(stream.full, play_match(home, away, seed), pace)

    def play(self, stream: str, updates: list[Any], pace: float) -> None:
        # tqdm draws with carriage returns: give it the raw stream, not Django's line wrapper.
        out = getattr(self.stderr, "_out", sys.stderr)
        started, sent, first = time.monotonic(), 0, None
        answer_ctrl_c()  # Ctrl-C stops the match even if we were started with SIGINT ignored
        bar = tqdm(total=len(updates), unit="update", file=out, desc=stream, dynamic_ncols=True)
        try:
            for update in updates:
                delay = started + update.at * pace - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                done = publish(stream, update.data)
                first = first or done.seq
                sent += 1
                bar.set_postfix_str(f"{update.data['clock']} {update.data['score'][0]}-{update.data['score'][1]}")
                bar.update()
        except KeyboardInterrupt:
            bar.close()
            self.stderr.write(f"stopped after {sent} of {len(updates)} updates")
            raise SystemExit(130) from None
        except RealtimeError as exc:
            bar.close()
            raise CommandError(f"publish failed after {sent} of {len(updates)} updates: {exc}") from None
        bar.close()
        last = updates[-1].data
        self.stdout.write(f"{last['event']}; {sent} updates, seq {first} to {done.seq}")
