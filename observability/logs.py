"""Log setup for every entry point: text for people, JSON lines for log pipelines.

``LIFECYCLE_LOG_FORMAT=json`` writes one JSON object per line with ``time`` (UTC, ISO 8601),
``level``, ``logger``, ``message`` and whatever ids the call passed as ``extra``::

    log.info("sent message %s", message_id, extra={"message_id": message_id})

Logs name ids (user, message, journey), never phone numbers, emails or message bodies, and
no credential: the token of an unsubscribe link (``/u/<token>``, or a ``token`` query
parameter) is replaced by ``[redacted]`` in every line, uvicorn's access lines included
(:class:`RedactTokens`).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

# Loggers that say too much at INFO for a production log: the Twilio SDK writes every
# request's URL and headers.
_CHATTY = ("twilio.http_client",)

log = logging.getLogger(__name__)

# An unsubscribe link's token unsubscribes whoever holds it: it is a credential in a URL.
_TOKEN_PATTERNS = (
    (re.compile(r"(/u/)[^/?#\s\"']+"), r"\1[redacted]"),
    (re.compile(r"([?&]token=)[^&#\s\"']+"), r"\1[redacted]"),
)


def redact(text: str) -> str:
    """``text`` with every unsubscribe token in a URL or path replaced by ``[redacted]``."""
    for pattern, replacement in _TOKEN_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactTokens(logging.Filter):
    """Rewrites a record's message and string arguments so that no token is written.

    uvicorn's access line passes the path as an argument (``'%s - "%s %s HTTP/%s" %d'``),
    so the arguments are redacted one by one and the format keeps its types.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted(value) for key, value in record.args.items()}
        return True


def _redacted(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


def redact_access_log() -> None:
    """Put :class:`RedactTokens` on uvicorn's access logger, whoever set up its handlers.

    A filter on the logger runs before any handler, also uvicorn's own when it configured
    logging itself (``uvicorn --factory api.server:app_from_env``). Calling it again
    adds nothing.
    """
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactTokens) for existing in access.filters):
        access.addFilter(RedactTokens())


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    """The formatter of a ``LIFECYCLE_LOG_FORMAT`` value."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


class _LifecycleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard-error handler :func:`configure_logging` installs (and may replace)."""


def configure_logging(log_format: LogFormat = "text", *, level: int = logging.INFO) -> None:
    """Send every logger's records to standard error in ``log_format``, from ``level`` up.

    Calling it again (once settings are read) switches the format. Like
    ``logging.basicConfig``, it leaves alone a process whose logging its host already set
    up (a test runner, an application embedding the engine).
    """
    redact_access_log()
    root = logging.getLogger()
    if any(not isinstance(handler, _LifecycleHandler) for handler in root.handlers):
        return
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = _LifecycleHandler()
    handler.setFormatter(formatter_for(log_format))
    # On the handler too: any logger's line that reaches it (ours, a library's) is redacted.
    handler.addFilter(RedactTokens())
    root.addHandler(handler)
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def log_ready(component: str, detail: str = "", **ids: Any) -> None:
    """The one line a process logs when it is ready to work (``worker``, ``scheduler``).

    ``ids`` (task queues, journey ids, counts) go into the JSON line as fields.
    """
    log.info(
        "%s ready%s",
        component,
        f": {detail}" if detail else "",
        extra={"component": component} | ids,
    )
