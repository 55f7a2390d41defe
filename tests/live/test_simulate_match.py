"""`manage.py simulate_match` against the real Redis: a whole match, bad arguments, Ctrl-C."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from config.interrupt import default_sigint
from live.match import play_match
from realtime import runtime
from tests.conftest import BASE_DIR


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("simulate_match", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def stored(stream: str) -> list[dict]:
    async def read() -> list[str]:
        got = await runtime.current().backlog.read(stream)
        await runtime.close_current()
        return got.frames

    return [json.loads(frame) for frame in asyncio.run(read())]


def test_a_whole_match_is_published_in_order_and_ends_at_full_time() -> None:
    out, err = run("live:cup", "--pace", "0", "--seed", "11", "--home", "Harriers", "--away", "Albion")
    messages = stored("live:cup")
    expected = play_match("Harriers", "Albion", 11)
    assert [m["seq"] for m in messages] == list(range(1, len(expected) + 1))
    assert [m["data"] for m in messages] == [u.data for u in expected]
    last = messages[-1]["data"]
    assert last["status"] == "full time"
    events = [m["data"].get("event", "") for m in messages]
    home_goals = sum(e.startswith("Goal! Harriers ") for e in events)
    away_goals = sum(e.startswith("Goal! Albion ") for e in events)
    assert last["score"] == [home_goals, away_goals]
    assert last["event"] == f"Full time: Harriers {home_goals}-{away_goals} Albion"
    assert "seed 11" in out and f"seq 1 to {len(expected)}" in out and last["event"] in out
    assert f"{len(expected)}/{len(expected)}" in err  # the progress bar reached the end


def test_without_a_seed_the_match_is_random_and_its_seed_is_printed() -> None:
    out, _ = run("live:any", "--pace", "0")
    seed = int(out.split("seed ")[1].split()[0])
    assert [m["data"] for m in stored("live:any")] == [u.data for u in play_match("Rovers", "United", seed)]


def test_pace_spreads_the_match_over_wall_time() -> None:
    started = time.monotonic()
    run("live:paced", "--pace", "0.01", "--seed", "3")
    # About 99 match minutes at 10 ms each; a lower bound only, never an upper one.
    assert time.monotonic() - started >= play_match("Rovers", "United", 3)[-1].at * 0.01
    assert stored("live:paced")[-1]["data"]["status"] == "full time"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["room:lobby"], "live: streams only"),
        (["user:1"], "live: streams only"),
        (["live:bad name"], "must match"),
        (["live:"], "must match"),
        (["nope:x"], "kind must be one of"),
        (["demo"], "kind must be one of"),
        (["live:x", "--pace", "-1"], "--pace"),
        (["live:x", "--pace", "nan"], "--pace"),
        (["live:x", "--home", "   "], "team names"),
        (["live:x", "--away", "x" * 41], "team names"),
        (["live:x", "--home", "Same", "--away", "Same"], "must differ"),
    ],
)
def test_bad_arguments_say_what_is_wrong_and_publish_nothing(args: list[str], says: str) -> None:
    with pytest.raises(CommandError, match=says.replace("+", r"\+")):
        run(*args)
    assert stored("live:x") == []


@pytest.mark.slow
def test_a_bad_seed_or_pace_is_refused_by_the_parser() -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "simulate_match", "live:x", "--seed", "abc"],
        cwd=BASE_DIR, env=command_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0 and "--seed: invalid int value" in done.stderr


def command_env() -> dict[str, str]:
    return dict(
        os.environ, REDIS_URL=settings.REDIS_URL, RT_KEY_PREFIX=settings.RT_KEY_PREFIX,
        DJANGO_SETTINGS_MODULE="config.settings", RT_DATA_DIR=str(settings.DATA_DIR),
    )


def _sigint_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize("start_with", [default_sigint, _sigint_ignored], ids=["sigint-default", "sigint-ignored"])
def test_ctrl_c_stops_between_updates_without_a_traceback(start_with) -> None:
    """Also when started with SIGINT ignored, as a backgrounded job is."""
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "simulate_match", "live:stop", "--pace", "0.5", "--seed", "5"],
        cwd=BASE_DIR, env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=start_with,
    )
    try:
        deadline = time.monotonic() + 30
        while len(stored("live:stop")) < 3:  # kick-off and the first minutes are out
            assert time.monotonic() < deadline, "the match did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in err and "stopped after" in err
    sent = int(err.split("stopped after ")[1].split()[0])
    messages = stored("live:stop")
    # A Ctrl-C that lands while a publish is in flight may still let that one be stored.
    assert sent >= 3 and len(messages) in (sent, sent + 1)
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    assert messages[-1]["data"]["status"] != "full time"


def test_redis_out_of_reach_stops_with_a_clear_error(settings) -> None:
    from config.embedded_redis import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with pytest.raises(CommandError, match="publish failed after 0 of .* updates: unavailable"):
        run("live:x", "--pace", "0", "--seed", "1")
