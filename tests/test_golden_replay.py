"""Golden replay: every labelled conversation replayed through the service gives the recorded replies.

Guards refactorings and speed work; after a deliberate content change run `python -m bench.golden record`.
"""

from __future__ import annotations

import json

from bench.golden import GOLDEN, differences, digests


def test_every_labelled_conversation_replays_as_recorded() -> None:
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    changed = differences(recorded, digests())
    assert not changed, f"{len(changed)} changed, e.g. {changed[:5]} (python -m bench.golden check)"


def test_a_changed_reply_is_reported() -> None:
    recorded = {"provider/a:0": "0011", "provider/a:1": "2233"}
    assert differences(recorded, {"provider/a:0": "0011", "provider/a:1": "ffff"}) == ["provider/a:1"]
    assert differences(recorded, {"provider/a:0": "0011"}) == ["provider/a:1"]
