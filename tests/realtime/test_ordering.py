"""The ordering rules (realtime/ordering.py) and the backlog they read from (real Redis).

The pure functions are checked case by case and by property; the backlog is driven by
random appends, retries, trims and reads against a plain Python list of what was
appended, so every read must return exactly the frames the model says it holds.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from realtime import runtime
from realtime.backlog import Range
from realtime.names import stream_keys
from realtime.ordering import Arrival, classify, plan_fill, plan_since
from realtime.protocol import Since

# --- classify -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "seq", "expected"),
    [
        (0, 1, Arrival.NEXT),
        (5, 6, Arrival.NEXT),
        (5, 5, Arrival.DUPLICATE),
        (5, 1, Arrival.DUPLICATE),
        (0, 0, Arrival.DUPLICATE),
        (0, 2, Arrival.AHEAD),
        (5, 100, Arrival.AHEAD),
    ],
)
def test_classify(last: int, seq: int, expected: Arrival) -> None:
    assert classify(last, seq) is expected


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_classify_partitions_every_seq(last: int, seq: int) -> None:
    arrival = classify(last, seq)
    assert (arrival is Arrival.DUPLICATE) == (seq <= last)
    assert (arrival is Arrival.NEXT) == (seq == last + 1)
    assert (arrival is Arrival.AHEAD) == (seq > last + 1)


# --- plan_fill ----------------------------------------------------------------------------


def frames(first: int, last: int) -> list[str]:
    return [f"f{n}" for n in range(first, last + 1)]


def test_plan_fill_continues_the_position() -> None:
    fill = plan_fill(3, Range("e", 6, 4, frames(4, 6)))
    assert fill.frames == [(4, "f4"), (5, "f5"), (6, "f6")]
    assert fill.lost_upto == 3  # no unfillable hole


def test_plan_fill_skips_what_was_passed_on() -> None:
    fill = plan_fill(5, Range("e", 8, 2, frames(2, 8)))
    assert fill.frames == [(6, "f6"), (7, "f7"), (8, "f8")]
    assert fill.lost_upto == 5


def test_plan_fill_reports_a_trimmed_hole() -> None:
    fill = plan_fill(3, Range("e", 20, 11, frames(11, 20)))
    assert fill.lost_upto == 10  # seqs 4..10 are gone: recovered=false up to 10
    assert [seq for seq, _ in fill.frames] == list(range(11, 21))


def test_plan_fill_with_nothing_read() -> None:
    fill = plan_fill(7, Range("e", 7, 8, []))
    assert fill.frames == [] and fill.lost_upto == 7


def test_plan_fill_reports_a_hole_when_the_backlog_list_is_gone() -> None:
    # The meta counter survived (latest 10) but the list did not: read.lua returns
    # first = latest + 1 and no frames. Seqs 4..10 are gone, not "nothing new".
    fill = plan_fill(3, Range("e", 10, 11, []))
    assert fill.frames == [] and fill.lost_upto == 10


@given(st.integers(0, 50), st.integers(1, 60), st.integers(0, 30))
def test_plan_fill_frames_are_contiguous_after_the_position(last: int, first: int, count: int) -> None:
    fill = plan_fill(last, Range("e", first + count - 1, first, frames(first, first + count - 1)))
    seqs = [seq for seq, _ in fill.frames]
    assert all(seq > last for seq in seqs)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True
    assert all(text == f"f{seq}" for seq, text in fill.frames)
    # Where frames start determines the hole: none when they continue the position.
    if seqs:
        assert seqs[0] == max(last + 1, first)
    assert fill.lost_upto == max(last, first - 1)


# --- plan_since ---------------------------------------------------------------------------


def test_plan_since_replays_after_the_position() -> None:
    start = plan_since(Since("e", 3), Range("e", 6, 4, frames(4, 6)))
    assert start.recovered and start.frames == ["f4", "f5", "f6"] and start.position == 6


def test_plan_since_at_the_latest_is_recovered_with_nothing_to_send() -> None:
    start = plan_since(Since("e", 6), Range("e", 6, 7, []))
    assert start.recovered and start.frames == [] and start.position == 6


def test_plan_since_zero_of_a_new_stream() -> None:
    start = plan_since(Since("e", 0), Range("e", 0, 1, []))
    assert start.recovered and start.frames == [] and start.position == 0


def test_plan_since_another_epoch_is_not_recovered() -> None:
    start = plan_since(Since("old", 3), Range("new", 6, 4, frames(4, 6)))
    assert not start.recovered and start.frames == [] and start.position == 6


def test_plan_since_past_the_latest_is_not_recovered() -> None:
    start = plan_since(Since("e", 9), Range("e", 6, 7, []))
    assert not start.recovered and start.frames == [] and start.position == 6


def test_plan_since_older_than_the_backlog_is_not_recovered() -> None:
    start = plan_since(Since("e", 2), Range("e", 20, 11, frames(11, 20)))
    assert not start.recovered and start.frames == [] and start.position == 20


def test_plan_since_with_an_expired_backlog_is_not_recovered() -> None:
    start = plan_since(Since("e", 2), Range("e", 20, 21, []))
    assert not start.recovered and start.position == 20


# --- the backlog against a model (real Redis) ---------------------------------------------

BACKLOG_SIZE = 5

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 7)),
        st.tuples(st.just("retry"), st.integers(0, 40)),
        st.tuples(st.just("read"), st.integers(0, 45), st.integers(-1, 45), st.integers(0, 8)),
        st.tuples(st.just("lose"), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


def expected_read(model: list[int], size: int, first: int, last: int, most: int) -> tuple[int, list[int]]:
    """What a read of [first, last] (most counted back from last) must return: (first, seqs)."""
    latest = len(model)
    kept_from = max(1, latest - size + 1)
    top = latest if last < 0 or last > latest else last
    start = first
    if most > 0 and top - start + 1 > most:
        start = top - most + 1
    start = max(start, kept_from, 1)
    return start, list(range(start, top + 1)) if top >= start else []


async def drive_backlog(ops: list[tuple[Any, ...]]) -> None:
    backlog = runtime.current().backlog
    assert backlog.size == BACKLOG_SIZE
    stream = "room:model-" + uuid.uuid4().hex[:12]
    model: list[int] = []  # the payload of seq n is model[n - 1]
    ids: list[tuple[str, int]] = []  # (client id, seq) of every id-carrying append of this epoch
    epoch: str | None = None
    counter = 0
    try:
        for op in ops:
            if op[0] == "append":
                for _ in range(op[1]):
                    counter += 1
                    cid = f"id{counter}"
                    got = await backlog.append(
                        stream, f'"ts":1,"data":{counter},"sender":null}}', sender_key="s", client_id=cid, archive=False
                    )
                    model.append(counter)
                    assert not got.duplicate
                    assert got.seq == len(model)  # contiguous: the next seq, always
                    if epoch is None:
                        epoch = got.epoch
                    assert got.epoch == epoch
                    assert json.loads(got.text) == {
                        "type": "message", "stream": stream, "seq": got.seq, "epoch": epoch,
                        "ts": 1, "data": counter, "sender": None,
                    }
                    ids.append((cid, got.seq))
            elif op[0] == "retry" and ids:
                cid, seq = ids[op[1] % len(ids)]
                got = await backlog.append(
                    stream, '"ts":1,"data":"retry","sender":null}', sender_key="s", client_id=cid, archive=False
                )
                assert got.duplicate and got.seq == seq and got.epoch == epoch
            elif op[0] == "read":
                _, first, last, most = op
                got = await backlog.read(stream, first=max(first, 1), last=last, most=most)
                if epoch is None:
                    epoch = got.epoch  # a read creates the epoch of a stream that has none
                assert got.epoch == epoch
                assert got.latest == len(model)
                want_first, want = expected_read(model, BACKLOG_SIZE, max(first, 1), last, most)
                decoded = [json.loads(text) for text in got.frames]
                assert [f["seq"] for f in decoded] == want
                assert [f["data"] for f in decoded] == [model[n - 1] for n in want]
                if want:
                    assert got.first == want_first
                assert len(got.frames) <= BACKLOG_SIZE
            elif op[0] == "lose":
                # The stream's keys vanish (expired, or Redis restarted empty): a new epoch.
                keys = stream_keys(backlog.prefix, stream, backlog.buckets)
                await backlog.redis.delete(keys.meta, keys.log)
                old, model, ids = epoch, [], []
                new_epoch, latest = await backlog.position(stream)
                assert latest == 0 and new_epoch != old
                epoch = new_epoch
    finally:
        await runtime.close_current()


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_backlog_matches_a_list_model(ops: list[tuple[Any, ...]], rt_settings: str) -> None:
    saved = settings.RT_BACKLOG_SIZE
    settings.RT_BACKLOG_SIZE = BACKLOG_SIZE
    runtime.forget_all()
    try:
        asyncio.run(drive_backlog(ops))
    finally:
        settings.RT_BACKLOG_SIZE = saved
        runtime.forget_all()


async def test_concurrent_appends_get_contiguous_seqs() -> None:
    """Racing appends on one stream (within the client pool of 100 connections): every seq 1..N exactly once, the backlog in seq order."""
    backlog = runtime.current().backlog
    stream = "live:race"
    results = await asyncio.gather(
        *(
            backlog.append(stream, f'"ts":1,"data":{i},"sender":null}}', sender_key="s", client_id=None, archive=False)
            for i in range(60)
        )
    )
    assert sorted(r.seq for r in results) == list(range(1, 61))
    assert len({r.epoch for r in results}) == 1
    got = await backlog.read(stream, first=1)
    kept = min(60, backlog.size)
    assert [json.loads(t)["seq"] for t in got.frames] == list(range(61 - kept, 61))
    await runtime.close_current()
