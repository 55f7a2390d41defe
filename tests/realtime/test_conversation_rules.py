"""The pure rules of private streams and edits: dm names, edit and deletion shapes, who
may change a message, and which names a text mentions."""

from __future__ import annotations

import pytest

from chat.notify import mentioned_names
from realtime.auth import Principal, Via
from realtime.errors import BadRequest, Forbidden
from realtime.names import dm_pair, dm_stream, parse_stream
from realtime.rights import change_target, check_change
from realtime.standing import Standing

ROOM = parse_stream("room:r")


@pytest.mark.parametrize("name", ["1.2", "10.9", "a.b", "u1.u2"])
def test_a_dm_name_is_two_different_ids_in_ascending_order(name: str) -> None:
    assert parse_stream(f"dm:{name}").kind == "dm"
    assert dm_pair(name) == tuple(name.split("."))


@pytest.mark.parametrize("name", ["2.1", "9.10", "1.1", "1", "1.2.3", ".1", "1.", "a..b"])
def test_any_other_dm_name_is_a_bad_request(name: str) -> None:
    with pytest.raises(BadRequest):
        parse_stream(f"dm:{name}")


def test_dm_stream_orders_the_pair_and_refuses_one_person() -> None:
    assert dm_stream("9", "10") == "dm:10.9"
    with pytest.raises(BadRequest):
        dm_stream("4", "4")


@pytest.mark.parametrize(
    "data",
    [{"edit": 1}, {"edit": "1", "text": "x"}, {"edit": 1, "text": None}, {"edit": 0, "text": "x"},
     {"edit": True, "text": "x"}, {"delete": 1, "text": "x"}, {"delete": -3}, {"delete": 1.5}],
)
def test_malformed_edits_and_deletions_are_bad_requests(data: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        change_target(ROOM, data)


def test_only_chat_kinds_have_edits() -> None:
    assert change_target(ROOM, {"edit": 3, "text": "x"}) == 3
    assert change_target(ROOM, {"delete": 4}) == 4
    assert change_target(ROOM, {"text": "plain"}) is None
    assert change_target(parse_stream("live:x"), {"delete": 4}) is None  # just data there


def _who(user_id: str, staff: bool = False) -> Principal:
    return Principal(Via.SESSION, user_id=user_id, is_staff=staff)


def _message(author: str | None, data: object) -> dict[str, object]:
    return {"seq": 1, "data": data, "sender": None if author is None else {"id": author, "name": "n"}}


def test_a_message_is_changed_by_its_author_or_a_moderator_only() -> None:
    text = _message("7", {"text": "hi"})
    check_change(_who("7"), None, text, 1)
    check_change(_who("8", staff=True), None, text, 1)
    check_change(_who("8"), Standing(owner=True), text, 1)  # a group's owner
    with pytest.raises(Forbidden):
        check_change(_who("8"), Standing(member=True), text, 1)
    with pytest.raises(Forbidden):
        check_change(_who("8"), None, _message(None, {"text": "from the server"}), 1)


@pytest.mark.parametrize("target", [None, _message("7", {"edit": 1, "text": "x"}), _message("7", {"delete": 1}),
                                    _message("7", {"score": 3}), _message("7", "text")])
def test_only_a_chat_message_can_be_changed(target: dict[str, object] | None) -> None:
    with pytest.raises(BadRequest):
        check_change(_who("7"), None, target, 1)


def test_mentions_are_usernames_after_an_at_once_each() -> None:
    assert mentioned_names("@ann hi @bob.b, @ann and @carol.") == ["ann", "bob.b", "carol"]
    assert mentioned_names("mail ann@example.com or x@y") == []
    assert mentioned_names("@" + "x" * 200)[0] == "x" * 150
    assert len(mentioned_names(" ".join(f"@u{n}" for n in range(50)))) == 20
