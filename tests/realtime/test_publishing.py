"""publish() and message_tail(): data that is not JSON is a BadRequest, and nothing is stored."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from realtime.errors import BadRequest
from realtime.publishing import SERVER, apublish, message_tail


@pytest.mark.parametrize("data", [object(), {"when": object()}, {(1, 2): "tuple key"}])
def test_message_tail_refuses_data_that_is_not_json(data: Any) -> None:
    with pytest.raises(BadRequest) as refused:
        message_tail(data, SERVER, 0)
    assert refused.value.code == "bad_request" and "not JSON" in refused.value.message


async def test_apublish_of_data_that_is_not_json_stores_nothing() -> None:
    with pytest.raises(BadRequest):
        await apublish("room:not-json", {"when": object()})
    assert (await apublish("room:not-json", {"ok": 1})).seq == 1  # the refused one took no seq


def test_every_public_name_of_realtime_resolves_and_no_other_does() -> None:
    import realtime

    assert sorted(realtime.__all__) == sorted([*realtime._PUBLIC, *realtime._MODULES])
    for name in realtime.__all__:
        assert getattr(realtime, name) is not None
    with pytest.raises(AttributeError):
        realtime.not_a_public_name  # noqa: B018


async def test_a_control_message_sent_from_the_loop_is_kept_until_it_is_sent() -> None:
    """send_control() from a running loop keeps its task (a task nobody holds may be
    collected before it runs), and lets it go once the message is on its way."""
    import gc

    from realtime import publishing, runtime

    layer = runtime.current().layer
    channel = await layer.new_channel()
    await layer.group_add("rt-test-control", channel)
    publishing.send_control("rt-test-control", {"type": "rt.test", "n": 1})
    assert len(publishing._control_tasks) == 1
    gc.collect()  # held by the module, not only by the loop's weak reference
    assert (await layer.receive(channel))["n"] == 1
    for _ in range(50):
        if not publishing._control_tasks:
            break
        await asyncio.sleep(0.01)
    assert publishing._control_tasks == set()
    await layer.group_discard("rt-test-control", channel)
    await runtime.close_current()
