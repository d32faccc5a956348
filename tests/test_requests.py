"""Request recognition on the labelled first messages of both companies (`tonebot eval requests`): the dev
sets were used while tuning, the check sets only to confirm; the blind figures are in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogs.content import CONTENT_ROOT, LiveContent
from dialogs.evaluation.metrics import read_jsonl
from dialogs.evaluation.requests import evaluate_requests

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("company", "which", "accuracy"),
    [
        ("provider", "dev", 0.90),
        ("provider", "check", 0.90),
        ("bank", "dev", 0.92),
        ("bank", "check", 0.92),
    ],
)
def test_requests_are_recognised(company: str, which: str, accuracy: float) -> None:
    content = LiveContent(CONTENT_ROOT / company).get()
    result, errors = evaluate_requests(content, read_jsonl(str(DATA / f"requests_{company}_{which}.jsonl")))
    assert result["n"] >= 170
    assert result["accuracy"] >= accuracy, errors[:20]
    assert result["in_scope_called_out_of_scope"] <= 0.03, errors[:20]
    assert result["out_of_scope"]["recall"] >= 0.80, errors[:20]


def test_smalltalk_alone_counts_as_no_request(live_content: LiveContent) -> None:
    rows = [
        {"id": "1", "text": "Здравствуйте!", "expect": None},
        {"id": "2", "text": "привет", "expect": "greeting"},
    ]
    result, _ = evaluate_requests(live_content.get(), rows)
    assert result["accuracy"] == 1.0


def test_a_request_inside_a_story_with_slang_and_typos(live_content: LiveContent) -> None:
    matcher = live_content.get().matcher
    for text in (
        "у нас с обеда интернета нет, ни на компе ни на телефонах",
        "ноут и телефон к вайфаю подключены, а ничего не открывается",
        "сижу без связи с обеда",
        "internet ne rabotaet",
        "интирнет не работаит уже второй день",
    ):
        match = matcher.match(text)
        assert match is not None and match.scenario_id == "no_internet", text
    slow = matcher.match("интернет вроде есть, но ютуб не грузит")
    assert slow is not None and slow.scenario_id == "slow_internet"
