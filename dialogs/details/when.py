"""Dates and times as Russians write them: "завтра после 18", "в пн с 10 до 12", "25.11 в 15:00"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from common.text import fold
from dialogs.details.base import Found, Invalid

_WEEKDAYS = {
    "понедельник": 0, "пн": 0, "вторник": 1, "вт": 1, "сред": 2, "ср": 2, "четверг": 3, "чт": 3,
    "пятниц": 4, "пт": 4, "суббот": 5, "сб": 5, "воскресень": 6, "вс": 6,
}  # fmt: skip
_MONTHS = {
    "январ": 1, "феврал": 2, "март": 3, "апрел": 4, "ма": 5, "июн": 6,
    "июл": 7, "август": 8, "сентябр": 9, "октябр": 10, "ноябр": 11, "декабр": 12,
}  # fmt: skip
# Parts of the day as hour ranges.
_PARTS_OF_DAY = {
    "утр": (9, 12), "дн": (12, 17), "днем": (12, 17), "днём": (12, 17),
    "обед": (12, 14), "вечер": (17, 21), "ноч": (21, 23),
}  # fmt: skip
_RELATIVE_DAYS = {"сегодня": 0, "завтра": 1, "послезавтра": 2, "вчера": -1, "позавчера": -2}
# Longest first, so "послезавтра" is not read as "завтра".
_RELATIVE_DAY_RES = tuple(
    (re.compile(rf"\b{word}\b"), offset)
    for word, offset in sorted(_RELATIVE_DAYS.items(), key=lambda kv: -len(kv[0]))
)
_DIGIT = re.compile(r"\d")
_ANY_TIME = re.compile(r"\b(?:в любое время|когда угодно|любое время|в любой момент|без разницы)\b")
_NOW = re.compile(r"\b(?:сейчас|прямо сейчас|немедленно|срочно)\b")
_DAYS_AGO = re.compile(r"\b(\d{1,2}|два|три|пару)\s+(?:дн\w*|сут\w*)\s+назад\b")
_AGO_WORDS = {"два": 2, "три": 3, "пару": 2}
_IN_DELTA = re.compile(r"\bчерез\s+(\d{1,2}|полчаса|час)\s*(минут\w*|мин\b|час\w*)?")
_DATE_NUM = re.compile(r"\b(\d{1,2})[./](\d{1,2})(?:[./](\d{2,4}))?\b")
_DATE_WORD = re.compile(r"\b(\d{1,2})(?:-?го)?\s+(" + "|".join(_MONTHS) + r")[а-я]*\b")
# Full names take their endings ("в пятницу", "по четвергам"); "сред" only as the day ("среди" is not
# one); the two-letter abbreviations only as whole words, or "что" would be Thursday and "сбой" Saturday.
_WEEKDAY = re.compile(
    r"\b(понедельник[а-я]*|вторник[а-я]*|сред(?:а|у|ы|е|ам)\b|четверг[а-я]*|пятниц[а-я]*|суббот[а-я]*"
    r"|воскресень[а-я]*|(?:пн|вт|ср|чт|пт|сб|вс)\b)"
)
_RANGE = re.compile(
    r"\b(?:с|от)\s*(\d{1,2})(?:[:.](\d{2}))?\s*(?:ч\w*)?\s*(?:до|по|-|–)\s*(\d{1,2})(?:[:.](\d{2}))?"
)
_DASH_RANGE = re.compile(
    # Not inside a longer run of dashed numbers: "000-11-22" ends a phone, it is no time window.
    r"(?<![\d.:/-])(\d{1,2})(?:[:.](\d{2}))?\s*[-–]\s*(\d{1,2})(?:[:.](\d{2}))?(?![\d./-])"
)
_AFTER = re.compile(r"\b(?:после|позже)\s*(\d{1,2})(?:[:.](\d{2}))?")
_BEFORE = re.compile(
    r"\b(?:до|не позже|раньше)\s*(\d{1,2})(?:[:.](\d{2}))?(?!\s*(?:ноябр|декабр|январ|[./]))"
)
# An hour is a number of its own: "на 8 800 555-35-35" dials a phone, it is not eight o'clock.
_AT = re.compile(
    r"(?:\b(?:в|к|около|на)\s*|^|\s)(\d{1,2})(?:[:.](\d{2}))?(?!\d)(?!\s*[-–]?\s*\d{3})"
    r"\s*(час\w*|ч\b|утра|вечера|дня|ночи)?"
)
_CLOCK = re.compile(r"(?<![\d.])(\d{1,2}):(\d{2})(?![\d])")
_PART = re.compile(r"\b(утр|днем|дн[её]м|обед|вечер|ноч)[а-я]*\b")
_WORD_RES = (
    _ANY_TIME, _NOW, _IN_DELTA, _DAYS_AGO, *(word_re for word_re, _ in _RELATIVE_DAY_RES), _WEEKDAY, _PART
)  # fmt: skip
# _AT counts only after a preposition or before an hour word.
_AT_COUNTS = re.compile(r"\b(?:в|к|около|на)\s*\d|\d\s*(?:час|ч\b|утра|вечера|дня|ночи)")
_NUMBER_RES = (_DATE_NUM, _DATE_WORD, _RANGE, _DASH_RANGE, _AFTER, _BEFORE, _CLOCK, _AT_COUNTS)
# Something parse_when reads must be in the text: one search rules most messages out.
_WORDS_ONLY = re.compile("|".join(f"(?:{r.pattern})" for r in _WORD_RES))
_ANY_WHEN = re.compile("|".join(f"(?:{r.pattern})" for r in (*_WORD_RES, *_NUMBER_RES)))


@dataclass(frozen=True, slots=True)
class When:
    """A parsed date and time window; None parts were not said."""

    day: date | None
    start: tuple[int, int] | None
    end: tuple[int, int] | None
    any_time: bool = False

    def iso(self) -> str:
        """A stable text form: `2026-11-24 10:00-12:00`, `2026-11-24`, `10:00-`, `any`."""
        if self.any_time:
            return "any"
        parts = [self.day.isoformat()] if self.day else []
        if self.start or self.end:
            start = f"{self.start[0]:02d}:{self.start[1]:02d}" if self.start else ""
            end = f"{self.end[0]:02d}:{self.end[1]:02d}" if self.end else ""
            parts.append(start if self.start and not self.end else f"{start}-{end}")
        return " ".join(parts)


def _hm(hour: str, minute: str | None) -> tuple[int, int]:
    return int(hour), int(minute or 0)


def _day(text: str, now: datetime, past: bool) -> date | str | None:
    today = now.date()
    for word_re, offset in _RELATIVE_DAY_RES:
        if word_re.search(text):
            return today + timedelta(days=offset)
    if m := _DAYS_AGO.search(text):
        amount = _AGO_WORDS.get(m.group(1)) or int(m.group(1))
        return today - timedelta(days=amount)
    has_digit = _DIGIT.search(text) is not None  # numeric dates need one
    if has_digit and (m := _DATE_NUM.search(text)):
        return _make_date(int(m.group(1)), int(m.group(2)), m.group(3), today, past)
    if has_digit and (m := _DATE_WORD.search(text)):
        month = next(v for k, v in _MONTHS.items() if m.group(2).startswith(k))
        return _make_date(int(m.group(1)), month, None, today, past)
    if m := _WEEKDAY.search(text):
        target = next(v for k, v in _WEEKDAYS.items() if m.group(1).startswith(k))
        if past:
            # "в понедельник" about a payment: the last Monday, today included.
            return today - timedelta(days=(today.weekday() - target) % 7)
        ahead = (target - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    return None


def _make_date(day: int, month: int, year: str | None, today: date, past: bool) -> date | str:
    full_year = today.year if year is None else int(year) + (2000 if len(year) == 2 else 0)
    try:
        result = date(full_year, month, day)
        # Without a year, a date is the nearest one on the side of today the detail is about.
        if year is None and not past and result < today - timedelta(days=1):
            result = result.replace(year=today.year + 1)
        if year is None and past and result > today:
            result = result.replace(year=today.year - 1)
    except ValueError:  # 31 April, or 29 February in a year without one
        return "invalid"
    return result


def _pm(hour: int, suffix: str | None, part: tuple[int, int] | None) -> int:
    afternoon = (suffix or "").startswith(("вечер", "дня")) or (part is not None and part[0] >= 12)
    return hour + 12 if afternoon and hour < 12 else hour


def _times(text: str) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    part_match = _PART.search(text)
    part = None
    if part_match:
        word = part_match.group(1)
        part = next((hours for prefix, hours in _PARTS_OF_DAY.items() if word.startswith(prefix)), None)
    if _DIGIT.search(text) is None:
        # Every clock-time pattern below needs a digit; only a part of the day is left to say.
        return ((part[0], 0), (part[1], 0)) if part else (None, None)
    if m := _RANGE.search(text) or _DASH_RANGE.search(text):
        return _hm(m.group(1), m.group(2)), _hm(m.group(3), m.group(4))
    if m := _AFTER.search(text):
        return (_pm(int(m.group(1)), None, part), int(m.group(2) or 0)), None
    if m := _BEFORE.search(text):
        return None, _hm(m.group(1), m.group(2))
    if m := _CLOCK.search(text):
        return _hm(m.group(1), m.group(2)), None
    for m in _AT.finditer(text):
        if m.group(3) or m.group(0).strip()[:1] in "вкон":
            return (_pm(int(m.group(1)), m.group(3), part), int(m.group(2) or 0)), None
    if part:
        return (part[0], 0), (part[1], 0)
    return None, None


def parse_when(text: str, now: datetime, *, past: bool = False) -> When | str | None:
    """Parse a date/time window (one to come, or with `past` one gone by); a problem code string when it
    cannot be valid; None if nothing said."""
    folded = fold(text)
    if (_WORDS_ONLY if _DIGIT.search(folded) is None else _ANY_WHEN).search(folded) is None:
        return None
    return _parse_folded(folded, now, past)


def _parse_folded(folded: str, now: datetime, past: bool = False) -> When | str | None:
    if _ANY_TIME.search(folded):
        return When(None, None, None, any_time=True)
    if _NOW.search(folded):
        return When(now.date(), (now.hour, now.minute), None)
    if m := _IN_DELTA.search(folded):
        amount = 30 if m.group(1) == "полчаса" else 1 if m.group(1) == "час" else int(m.group(1))
        unit_minutes = m.group(1) == "полчаса" or (m.group(2) or "").startswith("мин")
        moment = now + (timedelta(minutes=amount) if unit_minutes else timedelta(hours=amount))
        return When(moment.date(), (moment.hour, moment.minute), None)
    day = _day(folded, now, past)
    if day == "invalid":
        return "datetime_invalid"
    start, end = _times(folded)
    if day is None and start is None and end is None:
        return None
    for point in (start, end):
        if point and (point[0] > 23 or point[1] > 59):
            return "datetime_invalid"
    if isinstance(day, date) and not past and day < now.date():
        return "datetime_past"
    if isinstance(day, date) and past and day > now.date():
        return "datetime_future"
    if past and day is None and (start or end):
        day = now.date()  # "в 10 утра" about a payment: today
    return When(day if isinstance(day, date) else None, start, end)


def find_when(
    name: str, text: str, now: datetime, *, asked: bool, past: bool = False
) -> Found | Invalid | None:
    """A date/time detail in text; when asked, an unreadable answer is reported as invalid."""
    parsed = parse_when(text, now, past=past)
    if isinstance(parsed, When):
        return Found(name, parsed.iso(), _said(text))
    if isinstance(parsed, str):
        return Invalid(name, parsed, text.strip())
    return Invalid(name, "datetime_unclear", text.strip()) if asked else None


def _said(text: str) -> str:
    """The words of a text that name the date or time ("20 декабря" of "мы переезжаем 20 декабря на ...")."""
    folded = fold(text)
    spans = [m.span() for m in _ANY_WHEN.finditer(folded)]
    if not spans:
        return text.strip()
    start, end = min(s for s, _ in spans), max(e for _, e in spans)
    return text[start:end].strip(" ,.;:-") or text.strip()


# Date and time expressions that a street address never contains ("Завтра после 18" is no "Street 18").
_DOTTED_DATE = re.compile(r"\b(?:0?[1-9]|[12]\d|3[01])\.(?:0?[1-9]|1[0-2])(?:\.\d{2,4})?\b")
_SURELY_WHEN = (
    *(word_re for word_re, _ in _RELATIVE_DAY_RES), _WEEKDAY, _DATE_WORD, _DOTTED_DATE, _AFTER, _BEFORE,
    _CLOCK, _DAYS_AGO,
)  # fmt: skip


def when_spans(text: str) -> list[tuple[int, int]]:
    """Where a text surely names a date or time."""
    folded = fold(text)
    return [m.span() for regex in _SURELY_WHEN for m in regex.finditer(folded)]


_STORED = re.compile(r"^(?:(\d{4}-\d{2}-\d{2}))?\s*(?:(\d{2}):(\d{2}))?(?:-(?:(\d{2}):(\d{2}))?)?$")
# A call-back asked for a day without a time is due when the working day starts.
_DAY_STARTS = (9, 0)


def due_moment(stored: str, now: datetime) -> datetime | None:
    """When a call-back asked for at `stored` (When.iso() form) is due, in `now`'s zone: the window's
    start; a time already gone today means tomorrow; "any" or nothing readable means now."""
    found = _STORED.match(stored.strip())
    if stored.strip() == "any" or found is None:
        return now
    day_text, hour, minute = found.group(1), found.group(2), found.group(3)
    day = date.fromisoformat(day_text) if day_text else now.date()
    if hour is not None:
        start = (int(hour), int(minute))
    else:
        # No start ("до 12", a day alone): as soon as possible that day.
        start = (now.hour, now.minute) if day == now.date() else _DAY_STARTS
    moment = now.replace(
        year=day.year, month=day.month, day=day.day, hour=start[0], minute=start[1], second=0, microsecond=0
    )
    if moment < now and not day_text and hour is not None:
        moment += timedelta(days=1)
    return max(moment, now) if day_text is None and hour is None else moment
