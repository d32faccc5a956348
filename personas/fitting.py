"""Word weights for the persona classifier, fitted from labelled conversations into a readable YAML table.

Each word's weight for a persona is its log-odds among the clients' messages of that persona against all
others' (neutral included), kept when enough messages share it. Editors read the table, change or delete
any line; words they put in signals.yaml for a persona are left to signals.yaml.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import yaml

from common.text import Lemmatizer
from personas.labels import NEUTRAL, PERSONAS

SMOOTHING = 0.5
MIN_MESSAGES = 4
MIN_WEIGHT = 1.2
MAX_WEIGHT = 3.0
WORDS_KEPT = 120
# Function words and the like say nothing of a persona by themselves.
MIN_LETTERS = 3
# Greetings, thanks and goodbyes are what every client says; in labelled data they lean to the friendly
# personas by chance of who was written more politely, and a plain "спасибо, до свидания" marks no one.
FORMULAIC = frozenset(
    {
        "спасибо",
        "благодарить",
        "благодарность",
        "пожалуйста",
        "здравствуйте",
        "здравствовать",
        "привет",
        "добрый",
        "свидание",
        "хороший",
        "день",
        "утро",
        "вечер",
        "всего",
        "доброго",
    }
)


def fit(rows: Iterable[dict[str, Any]], lemmatizer: Lemmatizer) -> dict[str, dict[str, float]]:
    """Persona -> {lemma: weight} from conversations in the personas evaluation format."""
    per_label: dict[str, Counter[str]] = {label: Counter() for label in PERSONAS}
    sizes: Counter[str] = Counter()
    for row in rows:
        label = str(row.get("persona", NEUTRAL))
        if label not in per_label:
            continue
        for message in row.get("messages") or []:
            text = str(message.get("text", "")) if isinstance(message, dict) else str(message)
            lemmas = {
                lemma
                for lemma in lemmatizer.lemmas(text)
                if len(lemma) >= MIN_LETTERS and lemma.isalpha() and lemma not in FORMULAIC
            }
            per_label[label].update(lemmas)
            sizes[label] += 1
    total = sum(sizes.values())
    everywhere: Counter[str] = Counter()
    for counts in per_label.values():
        everywhere.update(counts)
    table: dict[str, dict[str, float]] = {}
    for label in PERSONAS:
        if label == NEUTRAL or not sizes[label]:
            continue
        weights = {}
        for lemma, inside_count in per_label[label].items():
            if inside_count < MIN_MESSAGES:
                continue
            inside = (inside_count + SMOOTHING) / (sizes[label] + 2 * SMOOTHING)
            outside_count = everywhere[lemma] - inside_count
            outside = (outside_count + SMOOTHING) / (total - sizes[label] + 2 * SMOOTHING)
            weight = math.log(inside / outside)
            if weight >= MIN_WEIGHT:
                weights[lemma] = round(min(MAX_WEIGHT, weight), 2)
        best = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:WORDS_KEPT]
        table[label] = dict(sorted(best))
    return table


def as_yaml(
    table: dict[str, dict[str, float]],
    sources: list[str],
    scale: float,
    scales: dict[str, float] | None = None,
) -> str:
    """The table as the file editors read: a header saying where it came from and how to change it."""
    header = (
        "# Word weights for the persona classifier, fitted by `tonebot personas fit` from labelled\n"
        "# conversations (a word's log-odds among one persona's messages against all others').\n"
        "# Read, change or delete any line; fit again to redo it from data.\n"
        "# A word that signals.yaml lists for a persona is\n"
        "# weighed there, not here. `scale` is how much a fitted word counts beside the hand-written cues.\n"
    )
    body = yaml.safe_dump(
        {"fitted_from": sources, "scale": scale, "scales": scales or {}, "words": table},
        allow_unicode=True,
        sort_keys=False,
        width=110,
    )
    return header + body
