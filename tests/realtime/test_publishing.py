"""publish() and message_tail(): data that is not JSON is a BadRequest, and nothing is stored."""

from __future__ import annotations

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
