"""Credentials never reach a log line or an error message: URLs are shown with their password masked."""

from __future__ import annotations

import logging
import re

# scheme://user:password@  or  scheme://secret@ (a token as the user part)
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:]*)(?::[^/@\n]*)?@")
# ...?password=secret&  (unix:// and some camera URLs carry them as query parameters)
_PARAMS = re.compile(r"(?P<name>[?&](?:password|passwd|pass|pwd|token|auth)=)[^&\s]*", re.I)


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""

    def mask(m: re.Match) -> str:
        user = m["user"]
        has_password = m.group(0).count(":") > 1
        return f"{m['scheme']}{user}:***@" if has_password and user else f"{m['scheme']}***@"

    return _PARAMS.sub(r"\g<name>***", _CREDENTIALS.sub(mask, text))


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in every record's final message (ours and libraries')."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """The CLI's logging: timestamps on stderr, credentials masked."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
