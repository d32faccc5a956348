"""Text from outside made safe to store: undecodable bytes (lone surrogates) and NULs replaced by U+FFFD.

Every channel's messages pass `clean_text` once, at the conversation service's door; a JSON body passes
`clean_json_body` first, since pydantic refuses the lone surrogates that JSON's `\\ud800` escapes produce.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "\ufffd"
# Lone surrogates (undecodable bytes read with surrogateescape, or JSON's `\ud800`) cannot be encoded at
# all, so storing one fails; PostgreSQL refuses NUL in text. Every other code point is valid text and is
# stored as it came.
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with lone surrogates and NULs as U+FFFD; the same object when there is none."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(REPLACEMENT, text)


def clean_json(value: Any) -> Any:
    """Parsed JSON with every string (keys too) passed through `clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(key): clean_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    return value


# The JSON escapes that decode to a NUL or a surrogate (a valid pair too: rare enough to take the walk).
_UNSAFE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def loads_clean(raw: str | bytes) -> Any:
    """`clean_json(json.loads(raw))`, skipping the walk over every string when the text has no unsafe
    character and no escape that decodes to one (a Bot API answer with its updates, per poll)."""
    parsed = json.loads(raw)
    if isinstance(raw, str) and _UNSAFE.search(raw) is None and _UNSAFE_ESCAPE.search(raw) is None:
        return parsed
    return clean_json(parsed)


def clean_json_body(body: bytes) -> bytes:
    """A JSON body whose strings hold no undecodable bytes, lone surrogates or NULs.

    Parsers refuse a `\\ud800` escape or a stray byte, and the client's message would be lost: such a
    body is parsed leniently, cleaned and encoded again. A body that is no JSON comes back unchanged, for
    the caller's parser to refuse.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
    else:
        if "\\u" not in text:
            return body  # raw NULs are no JSON; only escapes can bring in a NUL or a lone surrogate
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return body
    return json.dumps(clean_json(parsed), ensure_ascii=False).encode()
