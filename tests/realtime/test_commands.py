"""`mint_token` and `publish`: what they print is usable as is."""

from __future__ import annotations

import asyncio
import io

import pytest
from django.core.management import CommandError, call_command

from realtime import runtime
from realtime.auth import can_publish, can_subscribe, verify_token
from realtime.backlog import Range
from realtime.names import parse_stream


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_mint_token_prints_a_token_the_server_accepts() -> None:
    token = run("mint_token", "--sub", "42", "--name", "alice", "--subs", "user:42,live:a", "--pubs", "room:*", "--ttl", "60")
    who = verify_token(token)
    assert (who.user_id, who.name, who.subs, who.pubs) == ("42", "alice", ("user:42", "live:a"), ("room:*",))
    assert can_publish(who, parse_stream("room:x")) and not can_publish(who, parse_stream("live:x"))
    assert can_subscribe(who, parse_stream("user:42")) and not can_subscribe(who, parse_stream("user:43"))


def test_mint_token_refuses_a_ttl_that_is_not_positive() -> None:
    with pytest.raises(CommandError):
        run("mint_token", "--ttl", "0")


def test_publish_prints_seq_and_epoch_and_honours_id() -> None:
    first = run("publish", "live:cmd", '{"score": [1, 0]}', "--id", "goal-1")
    second = run("publish", "live:cmd", '{"score": [2, 0]}')
    repeat = run("publish", "live:cmd", '{"score": [1, 0]}', "--id", "goal-1")
    assert first.startswith("seq 1 epoch ") and second.startswith("seq 2 epoch ")
    assert repeat.startswith(first) and "duplicate" in repeat
    stored = asyncio.run(_read("live:cmd"))
    assert stored.latest == 2 and '"score":[2,0]' in stored.frames[-1]


async def _read(stream: str) -> Range:
    got = await runtime.current().backlog.read(stream)
    await runtime.close_current()
    return got


@pytest.mark.parametrize("args", [("live:cmd", "{not json"), ("nope:x", "1")])
def test_publish_refuses_bad_json_and_bad_streams(args: tuple[str, str]) -> None:
    with pytest.raises(CommandError):
        run("publish", *args)
