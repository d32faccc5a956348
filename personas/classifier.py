"""Which of five kinds of client this is, judged over the conversation and explained by its cues.

Each message contributes cues (a label, what was seen, a weight). Scores are decayed sums over the
conversation plus conversation-level cues (pace, volume). Aggression takes effect at once; the other
labels need their threshold, and to replace a current label they must beat it by a margin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.text import AnyOf, Lemmatizer, Token, fold
from personas.fitting import FORMULAIC
from personas.labels import NEUTRAL
from personas.normalise import is_masked, letters_only, mask_pattern, word_forms, words_of
from personas.signals import Signals

LABELS = ("aggressor", "unsure", "talker", "positive", "sysadmin")
CALM_LABELS = ("unsure", "talker", "positive", "sysadmin")
HISTORY_KEPT = 30
CUES_SHOWN = 12
FITTED_PREFIX = "fitted "
# Words recur across messages; what one word says about rudeness is remembered, up to this many words.
WORD_CACHE_SIZE = 50_000
_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2764]")
_LATIN_WORD = re.compile(r"\b[a-z][a-z0-9]*(?:-[a-z0-9]+)*\b")
_INTENSITY_CUES = ("!!! or ???", "!! or ?!", "capitals")
_QUOTED = re.compile(r"[\"«“][^\"»”]{3,60}[\"»”]")
_PUNCT = re.compile(r"[^\w\s]+")
# A shouted word: five or more Cyrillic capitals (Latin capitals are mostly acronyms: PPPOE, VLAN).
_CAPS_WORD = re.compile(r"\b[А-ЯЁ]{5,}\b")
_LETTERS = re.compile(r"[a-zа-яё]", re.IGNORECASE)


def _spaced(folded: str) -> str:
    """Lower-cased text with punctuation as spaces, padded, so phrases match whole words at the edges."""
    return f" {' '.join(_PUNCT.sub(' ', folded).split())} "


@dataclass(frozen=True, slots=True)
class Cue:
    """One thing seen in a message that points to a persona."""

    label: str
    what: str
    weight: float


@dataclass(slots=True)
class Verdict:
    """The persona with the score per label, the cues behind it, and whether to escalate to a person."""

    label: str
    scores: dict[str, float]
    cues: list[Cue] = field(default_factory=list)
    escalate: bool = False
    angry_now: bool = False

    def explain(self) -> dict[str, Any]:
        """JSON-ready explanation."""
        return {
            "label": self.label,
            "scores": {k: round(v, 2) for k, v in self.scores.items()},
            "cues": [f"{c.label}: {c.what} (+{c.weight:g})" for c in self.cues[:CUES_SHOWN]],
            "escalate": self.escalate,
        }


class PersonaClassifier:
    """Rule-based persona judge driven by the signals lexicon."""

    def __init__(self, signals: Signals, lemmatizer: Lemmatizer) -> None:
        self.signals = signals
        self.lemmatizer = lemmatizer
        self._patterns = [(re.compile(p), w, p) for p, w in signals.aggressor.patterns.items()]
        asking = "|".join(re.escape(fold(word)) for word in signals.unsure.question_words) or "(?!x)x"
        self._question_word = re.compile(rf"\b(?:{asking})\b")
        self._targets = [fold(t) for t in signals.aggressor.masked_targets]
        self._threats = [fold(t) for t in signals.aggressor.threat_phrases]
        self._leaving = [fold(t) for t in signals.aggressor.leave_phrases]
        self._threat_actions = [fold(t) for t in signals.aggressor.threat_actions]
        latin = signals.sysadmin.latin_terms
        self._everyday = frozenset(fold(w) for w in latin.everyday) if latin else frozenset()
        self._not_warm = set(signals.positive.emoji.not_positive) if signals.positive.emoji else set()
        # Phrases indexed by the first three letters of their first word: a message only checks the
        # phrases whose opening it contains. Phrases with punctuation (")))", "p.s") are always checked.
        # A phrase of words must start at a word boundary (looked for in `spaced` with a leading space); one
        # with punctuation (")))", "p.s") is a substring of `padded`. Entries carry the needle.
        self._phrase_index: dict[str, list[tuple[str, str, float, str]]] = {}
        self._punctuated: list[tuple[str, str, float, str]] = []
        for label in LABELS:
            for phrase, weight in getattr(signals, label).phrases.items():
                if _PUNCT.search(phrase.strip()):
                    self._punctuated.append((label, phrase, weight, phrase))
                else:
                    entry = (label, phrase, weight, " " + phrase.lstrip())
                    self._phrase_index.setdefault(phrase.split()[0][:3], []).append(entry)
        self._words = {label: getattr(signals, label).words for label in LABELS}
        self._learned: dict[str, list[tuple[str, float]]] = {}
        # Lemma -> its word cues' (label, weight) in LABELS order: one lookup a lemma instead of five.
        self._lemma_labels: dict[str, list[tuple[str, float]]] = {}
        for label in LABELS:
            for lemma, weight in self._words[label].items():
                self._lemma_labels.setdefault(lemma, []).append((label, weight))
        # Fitted word weights, but for the words signals.yaml already weighs: an editor's cue for this
        # persona is the weight, and one for another persona ("отличный" is praise) says the data was
        # sarcasm or chance, which the hand-written rules judge better than a word count.
        # Courtesy ("спасибо", "до свидания") is what everyone says on the way out; it marks no persona.
        learned = signals.learned
        courtesy = FORMULAIC
        for label, table in learned.words.items():
            if label not in LABELS:
                continue
            scale = learned.scales.get(label, learned.scale)
            for lemma, weight in table.items():
                if lemma in self._lemma_labels or lemma in courtesy or weight <= 0 or scale <= 0:
                    continue
                self._learned.setdefault(lemma, []).append((label, round(weight * scale, 3)))
        self._rude_words: dict[str, Cue | None] = {}
        polite = signals.aggressor.politeness
        decays = {label: getattr(signals, label).decay or signals.decay for label in LABELS}
        # decay ** age for every age the history keeps, worked out once.
        self._decay_powers = {label: [d**age for age in range(HISTORY_KEPT)] for label, d in decays.items()}
        angry = signals.aggressor.angry_emoji
        # Any single character of the listed emoji (a variation selector included), as `ch in emoji` reads.
        self._angry_emoji = re.compile(f"[{re.escape(angry.emoji)}]") if angry and angry.emoji else None
        self._polite = AnyOf(polite.markers if polite else ())
        mood = signals.aggressor.mood
        self._urgent = AnyOf([f" {u}" for u in mood.urgency] if mood else [])
        self._again = AnyOf([f" {a}" for a in mood.again] if mood else [])
        self._addressed = AnyOf([f" {w} " for w in ("вы", "вам", "вас", "ваш", "ваши", "вашего")])
        self._requesting = AnyOf([f" {r}" for r in mood.request_words] if mood else [])
        self._threatening = AnyOf(self._threats)
        self._acting = AnyOf(self._threat_actions)
        self._leaves = AnyOf(self._leaving)
        sarcasm = signals.aggressor.sarcasm
        self._troubled = AnyOf(sarcasm.trouble if sarcasm else [])
        self._praised = AnyOf(sarcasm.praise if sarcasm else [])

    # --- cues of one message ----------------------------------------------------------------------
    def message_cues(self, text: str, gap_seconds: float | None) -> list[Cue]:
        """Every cue in one message; `gap_seconds` is the pause since the client's previous message."""
        folded = fold(text)
        return self._message_cues(text, folded, _spaced(folded), gap_seconds)

    def _message_cues(self, text: str, folded: str, spaced: str, gap_seconds: float | None) -> list[Cue]:
        padded = f" {folded} "
        tokens = self.lemmatizer.tokens(text)
        lemma_list = [t.lemma for t in tokens]
        cues: list[Cue] = []
        # Grouped by label in LABELS order, lemmas in the order the words came, so cues (and float sums
        # of their weights) do not vary by run.
        by_label: dict[str, list[Cue]] = {}
        for lemma in dict.fromkeys(lemma_list):
            for label, weight in self._lemma_labels.get(lemma, ()):
                count = lemma_list.count(lemma)
                by_label.setdefault(label, []).append(
                    Cue(label, f"word «{lemma}»" + (" ×2" if count > 1 else ""), weight * min(2, count))
                )
        learned = self._learned
        for lemma in dict.fromkeys(lemma_list):
            for label, weight in learned.get(lemma, ()):
                by_label.setdefault(label, []).append(Cue(label, f"{FITTED_PREFIX}«{lemma}»", weight))
        for label in LABELS:
            cues += by_label.get(label, ())
        index = self._phrase_index
        for opening in dict.fromkeys(word[:3] for word in spaced.split()):
            for label, phrase, weight, needle in index.get(opening, ()):
                if needle in spaced:
                    cues.append(Cue(label, f"phrase «{phrase.strip()}»", weight))
        for label, phrase, weight, needle in self._punctuated:
            if needle in padded:
                cues.append(Cue(label, f"phrase «{phrase.strip()}»", weight))
        cues += self._profanity(text)
        cues += self._style(text, folded, gap_seconds)
        polite = self._polite(spaced)
        cues += self._mood(text, spaced, tokens, polite)
        quoted = self.signals.aggressor.quoted_words
        if quoted and _QUOTED.search(text) and any(c.label == "aggressor" for c in cues):
            cues.append(Cue("aggressor", "their words quoted back", quoted.weight))
        cues = _anger_needs_an_editors_cue(cues, self.signals.aggressor.fitted_needs)
        return self._soften(self._cheerful(cues), polite)

    @staticmethod
    def _cheerful(cues: list[Cue]) -> list[Cue]:
        """Exclamation marks and capitals next to emoji or warm words are joy, not anger."""
        if not any(c.label == "positive" for c in cues):
            return cues
        return [c for c in cues if not (c.label == "aggressor" and c.what.startswith(_INTENSITY_CUES))]

    def _mood(self, text: str, spaced: str, tokens: list[Token], polite: bool) -> list[Cue]:
        mood = self.signals.aggressor.mood
        if mood is None or polite:
            return []
        cues = []
        if mood.demand_weight and any("impr" in t.tags for t in tokens):
            cues.append(Cue("aggressor", "demand without «пожалуйста»", mood.demand_weight))
        if self._urgent(spaced):
            cues.append(Cue("aggressor", "urgency", mood.urgency_weight))
        if self._again(spaced):
            cues.append(Cue("aggressor", "failure again", mood.again_weight))
        if "?" in text and self._addressed(spaced) and not self._requesting(spaced):
            cues.append(Cue("aggressor", "rhetorical question", mood.rhetorical_weight))
        if "!!" in text or "?!" in text or "!?" in text:
            cues.append(Cue("aggressor", "!! or ?!", mood.double_marks_weight))
        angry = self.signals.aggressor.angry_emoji
        if angry and self._angry_emoji is not None and self._angry_emoji.search(text):
            cues.append(Cue("aggressor", "angry emoji", angry.weight))
        return cues

    def _soften(self, cues: list[Cue], is_polite: bool) -> list[Cue]:
        """A polite complaint is not aggression: mild aggressor cues count less next to politeness."""
        polite = self.signals.aggressor.politeness
        if polite is None or not is_polite:
            return cues
        if any(c.label == "aggressor" and c.weight >= polite.strong_cue for c in cues):
            return cues
        return [
            Cue(c.label, f"{c.what} (polite)", round(c.weight * polite.factor, 3))
            if c.label == "aggressor"
            else c
            for c in cues
        ]

    def _profanity(self, text: str) -> list[Cue]:
        cues = []
        known = self._rude_words
        for word in words_of(text):
            if word in known:
                cue = known[word]
            else:
                if len(known) >= WORD_CACHE_SIZE:
                    known.clear()
                cue = known[word] = self._rude_word(word)
            if cue is not None:
                cues.append(cue)
        return cues

    def _rude_word(self, word: str) -> Cue | None:
        """The cue one word gives: a masked swear word, a rude root, or none."""
        if is_masked(word):
            patterns = [mask_pattern(form) for form in word_forms(word)]
            if any(p.match(target) for p in patterns for target in self._targets):
                return Cue("aggressor", f"masked «{word}»", self.signals.aggressor.masked_weight)
        for form in word_forms(letters_only(word)):
            hit = next(((p, w) for regex, w, p in self._patterns if regex.search(form)), None)
            if hit:
                return Cue("aggressor", f"rude «{word}»", hit[1])
        return None

    def _style(self, text: str, folded: str, gap_seconds: float | None) -> list[Cue]:
        s = self.signals
        cues = []
        letters = _LETTERS.findall(text)
        caps = s.aggressor.caps
        shouted = _CAPS_WORD.findall(text)
        if caps and len(letters) >= caps.min_letters:
            upper = sum(map(str.isupper, letters)) / len(letters)
            if upper >= caps.ratio or shouted:
                cues.append(Cue("aggressor", f"capitals {' '.join(shouted[:2])}".strip(), caps.weight))
        marks = text.count("!")
        shouting = s.aggressor.exclamations
        if shouting and ("!!!" in text or "???" in text or "?!" in text or "!?" in text):
            cues.append(Cue("aggressor", "!!! or ???", shouting.weight))
        if s.positive.exclamations and 1 <= marks < 3 and s.positive.exclamations.min <= marks:
            cues.append(Cue("positive", "exclamation", s.positive.exclamations.weight))
        emoji = [ch for ch in _EMOJI.findall(text) if ch not in self._not_warm]
        if emoji and s.positive.emoji:
            cues.append(
                Cue("positive", f"emoji {''.join(emoji[:3])}", s.positive.emoji.weight * min(2, len(emoji)))
            )
        question = s.unsure.short_question
        if question and "?" in text and len(text) <= question.max_chars:
            cues.append(Cue("unsure", "short question", question.weight))
        a_question = s.unsure.a_question
        if (
            a_question
            and folded.startswith(("а ", "a "))
            and ("?" in text or self._question_word.search(folded) is not None)
        ):
            cues.append(Cue("unsure", "question opening with «а»", a_question.weight))
        long_message = s.talker.long_message
        if long_message and len(text) >= long_message.min_chars:
            cues.append(Cue("talker", f"long message ({len(text)} chars)", long_message.weight))
        burst = s.talker.burst
        if burst and gap_seconds is not None and gap_seconds <= burst.max_gap_seconds:
            cues.append(Cue("talker", f"{gap_seconds:.0f} s after the previous message", burst.weight))
        if s.sysadmin.ip_address and _IP.search(folded):
            cues.append(Cue("sysadmin", "IP address", s.sysadmin.ip_address.weight))
        latin = s.sysadmin.latin_terms
        if latin:
            terms = sorted({w for w in _LATIN_WORD.findall(folded) if w not in self._everyday})
            if terms:
                weight = min(latin.max, latin.per_term * len(terms))
                cues.append(Cue("sysadmin", f"terms {', '.join(terms[:4])}", round(weight, 2)))
        return cues

    def _is_threat(self, spaced: str, anger: float) -> bool:
        """A threat to go to court or a regulator or to shame the company; to leave, when already angry."""
        angry_enough = anger >= self.signals.aggressor.leave_needs_anger
        if (angry_enough or self._acting(spaced)) and self._threatening(spaced):
            return True
        return angry_enough and self._leaves(spaced)

    def _sarcasm(self, memory: dict[str, Any], spaced: str, in_trouble: bool) -> list[Cue]:
        sarcasm = self.signals.aggressor.sarcasm
        if sarcasm is None:
            return []
        if in_trouble or self._troubled(spaced):
            memory["trouble_at"] = memory.get("count", 0)
        # The first praise of the list, as the explanation names it; the scan finds out whether there is one.
        praise = next((p for p in sarcasm.praise if p in spaced), None) if self._praised(spaced) else None
        recent_trouble = memory.get("count", 0) - memory.get("trouble_at", -99) <= 3
        return (
            [Cue("aggressor", f"sarcasm «{praise}» about trouble", sarcasm.weight)]
            if praise and recent_trouble
            else []
        )

    # --- the conversation ---------------------------------------------------------------------------
    def judge(
        self, memory: dict[str, Any], current: str, text: str, at: datetime, *, in_trouble: bool = False
    ) -> Verdict:
        """Add one message to the persona memory (updated in place) and decide the persona.

        `in_trouble`: the client's complaint is still open, so praise now reads as sarcasm.
        """
        previous_at = memory.get("last_at")
        gap = (at - datetime.fromisoformat(previous_at)).total_seconds() if previous_at else None
        memory["last_at"] = at.isoformat()
        memory["count"] = memory.get("count", 0) + 1
        folded = fold(text)
        spaced = _spaced(folded)
        asking = memory.setdefault("asking", [])
        asking.append([int("?" in text or bool(self._question_word.search(folded))), len(text)])
        del asking[:-HISTORY_KEPT]
        cues = self._message_cues(text, folded, spaced, gap) + self._sarcasm(memory, spaced, in_trouble)
        weights = {label: sum(c.weight for c in cues if c.label == label) for label in LABELS}
        history: list[dict[str, float]] = memory.setdefault("history", [])
        history.append(weights)
        del history[:-HISTORY_KEPT]
        scores = self._scores(history, memory["count"])
        steps = self.signals.unsure.asks_every_step
        if steps and len(asking) >= steps.min_messages:
            share = sum(q for q, _ in asking) / len(asking)
            mean = sum(n for _, n in asking) / len(asking)
            if share >= steps.question_share and mean <= steps.max_mean_chars:
                scores["unsure"] += steps.weight
                cues.append(Cue("unsure", f"asks at each step ({share:.0%} questions)", steps.weight))
        room = max(0, CUES_SHOWN - len(cues))
        recent_cues = [*cues[:CUES_SHOWN], *[Cue(**c) for c in memory.get("cues", [])[:room]]]
        memory["cues"] = [{"label": c.label, "what": c.what, "weight": c.weight} for c in recent_cues]
        label = self._decide(scores, current)
        aggressor = self.signals.aggressor
        angry_now = weights["aggressor"] >= aggressor.threshold * aggressor.angry_now_share
        escalate = label == "aggressor" and scores["aggressor"] >= self.signals.aggressor.escalate_at
        if self._is_threat(spaced, scores["aggressor"]):
            recent_cues.insert(0, Cue("aggressor", "threat to complain, sue or leave", 0.0))
            label, escalate, angry_now = "aggressor", True, True
        return Verdict(label, scores, recent_cues, escalate, angry_now)

    def _scores(self, history: list[dict[str, float]], count: int) -> dict[str, float]:
        powers = self._decay_powers
        scores = dict.fromkeys(LABELS, 0.0)
        for age, weights in enumerate(reversed(history)):
            for label, weight in weights.items():
                if weight:  # most labels see nothing in a message; adding 0.0 would change nothing
                    scores[label] += weight * powers[label][age]
        many = self.signals.talker.many_messages
        if many and count >= many.min:
            scores["talker"] += many.weight
        return scores

    def _decide(self, scores: dict[str, float], current: str) -> str:
        s = self.signals
        if scores["aggressor"] >= s.aggressor.threshold:
            return "aggressor"
        passing = {lb: scores[lb] for lb in CALM_LABELS if scores[lb] >= getattr(s, lb).threshold}
        lingering = (
            current == "aggressor" and scores["aggressor"] >= s.aggressor.threshold * s.aggressor.linger
        )
        if lingering and all(score < scores["aggressor"] * s.margin for score in passing.values()):
            return "aggressor"
        if not passing:
            # Inertia: a label fades out only when its evidence has mostly decayed.
            if current in LABELS and scores[current] >= getattr(s, current).threshold * s.fade_below:
                return current
            return NEUTRAL
        best = max(passing, key=passing.__getitem__)
        if current in passing and scores[current] * s.margin >= scores[best]:
            return current
        return best


def _anger_needs_an_editors_cue(cues: list[Cue], needs: float) -> list[Cue]:
    """Aggression acts at once, so fitted words alone ("кто", "вообще") never make it: they count only
    beside a hand-written aggressor cue of some weight in the same message."""
    fitted = [c for c in cues if c.label == "aggressor" and c.what.startswith(FITTED_PREFIX)]
    if not fitted:
        return cues
    written = sum(c.weight for c in cues if c.label == "aggressor" and not c.what.startswith(FITTED_PREFIX))
    if written >= needs:
        return cues
    return [c for c in cues if not (c.label == "aggressor" and c.what.startswith(FITTED_PREFIX))]
