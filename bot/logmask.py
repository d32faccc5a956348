"""Personal data never reaches the logs in the clear: phones, emails, contract and account numbers and
addresses are masked, full card numbers and CVV codes removed, in every log record (message, arguments and
tracebacks) before any handler sees it. The patterns are dialogs/personal_data.py's, which editors' pages
share."""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from dialogs.details.card import redact_card_data
from dialogs.personal_data import EMAIL, LONG_NUMBER, NUMBER, PHONE, address_patterns

# An address the engine recognised, as the turn log shows it ("'new_address': 'Тверская 7'"): its value
# is masked wherever it stands in the record, whatever its form.
_ADDRESS_DETAIL = re.compile(r"""(['"])\w*address\w*\1\s*:\s*(['"])((?:(?!\2)[^\n\\]|\\.){1,300})\2""")
_MASKED_ADDRESS = "[адрес скрыт]"


def _mask_phone(found: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", found.group(0))
    plus = "+" if found.group(0).startswith("+") else ""
    return f"{plus}{digits[:4]}***{digits[-4:]}"


def _mask_number(found: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", found.group(0))
    return f"{digits[:2]}***{digits[-2:]}"


def _mask_addresses(text: str) -> str:
    recognised = {match.group(3) for match in _ADDRESS_DETAIL.finditer(text)}
    for value in sorted(recognised, key=len, reverse=True):
        # A value too short to be an address ("12") would mask every such digit pair in the record.
        if len(value.strip()) >= 4 and value != _MASKED_ADDRESS:
            text = text.replace(value, _MASKED_ADDRESS)
    for address in address_patterns():
        text = address.sub(_MASKED_ADDRESS, text)
    return text


def mask(text: str) -> str:
    """The text with personal data masked: `+7913***4567`, `i***@mail.ru`, `12***67`, `[адрес скрыт]`,
    `[карта ••••5432]`, `[код CVV скрыт]`."""
    text = redact_card_data(text)
    text = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _mask_addresses(text)
    text = LONG_NUMBER.sub(_mask_number, text)
    text = PHONE.sub(_mask_phone, text)
    return NUMBER.sub(_mask_number, text)


class _MaskingRecordFactory:
    """Wraps the logging record factory: the record's text is masked once, at creation."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.original(*args, **kwargs)
        try:
            record.msg, record.args = mask(record.getMessage()), None
            if record.exc_info and record.exc_info[0] is not None:
                record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)).rstrip())
                record.exc_info = None
            if record.stack_info:
                record.stack_info = mask(record.stack_info)
        except Exception:  # a record that cannot be formatted is left to logging's own error report
            pass
        return record


def install_masking() -> None:
    """Mask personal data in every log record of this process, whatever handler writes it."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _MaskingRecordFactory):
        logging.setLogRecordFactory(_MaskingRecordFactory(current))
