"""Personal data never reaches the logs in the clear: phones, emails, contract and account numbers and
addresses are masked, full card numbers and CVV codes removed, in every log record (message, arguments and
tracebacks) before any handler sees it."""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from dialogs.details.card import redact_card_data

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]{0,63}@([\w-]{1,63}(?:\.[\w-]{1,63}){1,8})")
# A phone: 10-15 digits, maybe with +, spaces, dashes, dots or brackets between them.
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[\s\-.()]{0,3}\d){9,14}(?!\w)")
# Contract and account numbers, card-like and other long digit runs: 5-9 digits standing alone.
_NUMBER = re.compile(r"(?<![\w*])\d{5,9}(?![\w*])")
# Account numbers (20 digits) and other runs too long for a phone.
_LONG_NUMBER = re.compile(r"(?<![\w*])\d{16,}(?![\w*])")
_STREET = re.compile(
    r"(?i)(?<!\w)(?:ул(?:ица)?|пр(?:осп(?:ект)?)?|пер(?:еулок)?|б-р|бульвар|ш(?:оссе)?|наб(?:ережная)?"
    r"|мкр|микрорайон|пл(?:ощадь)?|проезд|тракт)\.?\s+[^\n,;]{1,60}?(?:,?\s*(?:д(?:ом)?\.?\s*)?\d+[а-яa-z]?"
    r"(?:\s*[/,-]?\s*(?:к(?:орп(?:ус)?)?|стр(?:оение)?)\.?\s*\d+)?(?:,?\s*(?:кв(?:артира)?|оф(?:ис)?)\.?\s*\d+)?)"
)
_MASKED_ADDRESS = "[адрес скрыт]"


def _mask_phone(found: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", found.group(0))
    plus = "+" if found.group(0).startswith("+") else ""
    return f"{plus}{digits[:4]}***{digits[-4:]}"


def _mask_number(found: re.Match[str]) -> str:
    digits = found.group(0)
    return f"{digits[:2]}***{digits[-2:]}"


def mask(text: str) -> str:
    """The text with personal data masked: `+7913***4567`, `i***@mail.ru`, `12***67`, `[адрес скрыт]`."""
    text = redact_card_data(text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _STREET.sub(_MASKED_ADDRESS, text)
    text = _LONG_NUMBER.sub(_mask_number, text)
    text = _PHONE.sub(_mask_phone, text)
    return _NUMBER.sub(_mask_number, text)


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
