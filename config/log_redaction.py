"""No credential reaches a log: tokens in query strings, Authorization headers, JWTs and
Redis passwords are replaced by `[redacted]` in every log record.

uvicorn logs each WebSocket handshake with its query string (`/ws/?token=JWT`), and each
server, Django and the app add handlers of their own; a filter on a logger misses what
its children propagate, and one on a handler misses handlers made later. So the filter
runs where every record is made: Django's LOGGING_CONFIG points at `configure_logging`,
which wraps the log record factory once per process. daphne's access log is written
without `logging`; config/daphne_server.py passes its paths through `redact`.
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any

REDACTED = "[redacted]"


def _authorization(match: re.Match[str]) -> str:
    scheme = f"{match[2]} " if match[2] else ""
    return f"{match[1]}{scheme}{REDACTED}"


_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    # ?token=..., &access_token=..., id_token=... in URLs and query strings
    (re.compile(r"(?i)((?:^|[?&;\s\"'])[a-z_]*token=)[^&\s\"'#;]+"), r"\1" + REDACTED),
    # Authorization: Bearer ..., 'authorization': 'Basic ...', HTTP_AUTHORIZATION=...
    (re.compile(r"(?i)(authorization[\"']?\s*[:=,]\s*[\"']?)(?:(bearer|basic|token)\s+)?[^\s\"',;]+"), _authorization),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    # a JWT wherever it stands
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # redis://user:password@host
    (re.compile(r"(?i)(rediss?://[^:@/\s]*:)[^@\s]+@"), r"\1" + REDACTED + "@"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactingFilter(logging.Filter):
    """Rewrites a record in place; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record with bad args is logging's to report
            return True
        clean = redact(message)
        if clean != message:
            self._rewrite(record, clean)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True

    @staticmethod
    def _rewrite(record: logging.LogRecord, clean: str) -> None:
        """Redact the arguments one by one where that suffices, so that formatters that
        read `args` (uvicorn's access formatter unpacks them) keep working; else replace
        the message by its redacted text."""
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redact_value(arg) for arg in args)
        elif isinstance(args, dict):
            record.args = {key: _redact_value(arg) for key, arg in args.items()}
        try:
            if record.getMessage() == clean:
                return
        except Exception:  # noqa: BLE001
            pass
        record.msg, record.args = clean, ()


_FILTER = RedactingFilter()


def install() -> None:
    """Pass every record made in this process through RedactingFilter (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _FILTER.filter(record)
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure_logging(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: the settings' LOGGING, with redaction installed first."""
    install()
    logging.config.dictConfig(config)
