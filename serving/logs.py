"""One log record, one line: control characters in messages are escaped.

A server logs what clients send it (a request path, a header), and a client can put a
newline in a path (`/x%0aFAKE ...`) to forge a log line that seems to come from the server.
`escape_control_characters` makes every log message of the process printable: CR, LF, the
other C0 and C1 controls and Unicode line separators become `\\xNN` / `\\uNNNN` escapes.
Tracebacks, which the formatter adds after the message, keep their lines.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["escape", "escape_control_characters"]

_CONTROLS = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_TABLE = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _CONTROLS}


def escape(text: str) -> str:
    """`text` with every control character written as an escape."""
    return text.translate(_TABLE)


def escape_control_characters() -> None:
    """From now on, log records of this process carry escaped messages (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "escapes_controls", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it as usual
            return record
        escaped = escape(message)
        if escaped != message or record.args:
            record.msg, record.args = escaped, None
        return record

    factory.escapes_controls = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
