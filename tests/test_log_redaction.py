"""config/log_redaction.py: secrets leave log records, the rest of each line stays."""

from __future__ import annotations

import logging
from typing import Any

from config.log_redaction import install, redact
from tests.tokens import mint


def test_redaction_keeps_the_rest_of_the_line(caplog: Any) -> None:
    install()
    token = mint(sub="1")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5", f"/ws/?token={token}")
        logging.getLogger("realtime.test").warning("headers: %r", {"authorization": f"Bearer {token}"})
        logging.getLogger("realtime.test").warning("redis at %s", "redis://:hunter2hunter2@127.0.0.1:6379/0")
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == '127.0.0.1:5 - "WebSocket /ws/?token=[redacted]" [accepted]'
    assert token not in lines[1] and "Bearer [redacted]" in lines[1]
    assert lines[2] == "redis at redis://:[redacted]@127.0.0.1:6379/0"


def test_redact_covers_query_strings_headers_and_urls() -> None:
    assert redact("GET /api/x?since=1&token=abc.def&limit=2") == "GET /api/x?since=1&token=[redacted]&limit=2"
    assert redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic [redacted]"
    assert redact("HTTP_AUTHORIZATION=Bearer abc") == "HTTP_AUTHORIZATION=Bearer [redacted]"
    assert redact("rediss://user:pw@h:6380/0") == "rediss://user:[redacted]@h:6380/0"
    assert redact("a quiet line about tokens") == "a quiet line about tokens"


def test_a_format_string_that_holds_the_token_is_replaced_by_its_redacted_text() -> None:
    install()
    record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "GET /ws/?token=%s", ("abc",), None)
    assert record.getMessage() == "GET /ws/?token=[redacted]"
