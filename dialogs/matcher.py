"""Recognising which scenario a message asks for, with weights learned from the editors' examples.

Each term's weight for a label is its log-odds: how much more often the label's examples hold it than
everyone else's (smoothed, clipped). A message scores the sum over its terms, so the request is found
inside a long story (words no example has weigh nothing), and a term that belongs to other labels, or to
what the company does not serve (`out_of_scope` examples), counts against a label.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import add

from dialogs.scenarios import Scenario
from dialogs.terms import NEGATED, TermNormaliser

OUT_OF_SCOPE = "out_of_scope"
# Everyday talk: learned as a label of its own, so that a company's near misses keep their weight.
BACKGROUND = "background"
_NONE_OF_THESE = frozenset({OUT_OF_SCOPE, BACKGROUND})
# Small talk only wins short messages: in a long one the request matters, not the "привет".
SMALLTALK_MAX_TERMS = 4
# The least evidence (summed log-odds) that names a request; below it the message names none.
MATCH_THRESHOLD = 3.0
# Additive smoothing of the per-label term frequencies, and the bounds of one term's weight.
SMOOTHING = 1.0
MAX_WEIGHT = 5.0
MIN_WEIGHT = -1.0
# All words of an editor's key phrase present: this much more for its label.
KEYWORD_BONUS = 2.0
# A term seen in few examples is weak evidence whatever its ratio: its weight is scaled by df / (df + SHRINK).
SHRINK = 0.0
EVIDENCE_SHOWN = 4
# A request needs words that, counted together, this many of its examples hold (one rare word is not enough).
CORE_SUPPORT = 5
# Written forms this long are kept for typos to be read towards.
WRITTEN_MIN = 5
SUPPORT_SHARE = 0.03
# In the middle of a request, "not ours" needs this much more evidence.
MID_FLOW_EXTRA = 5.0
# A second request in the same message needs this much more than the threshold.
SECOND_REQUEST_EXTRA = 2.0
# Requests are also told apart by neighbouring words and by whether something already happened.
PAIRS = True
# The counted weights are then corrected where the examples themselves are confused: a few passes that
# move weight from the label an example was mistaken for to its own (a perceptron with a margin).
REFINE_PASSES = 10
REFINE_STEP = 0.1
REFINE_MARGIN = 3.0
REFINE_OUT_OF_SCOPE = True


@dataclass(frozen=True, slots=True)
class Match:
    """A recognised scenario, how sure (summed weights and the margin over the next), and why."""

    scenario_id: str
    score: float
    evidence: str
    margin: float = 0.0
    runner_up: str | None = None
    # A second request named in the same message ("сменить тариф и узнать, как оплатить"), if any.
    also: str | None = None


@dataclass(slots=True)
class Ranking:
    """Every label's score for one text, best first, with the terms behind each."""

    scores: list[tuple[str, float]] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    contributions: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    # For each label, how many of its examples share the message's most shared term: a request is named
    # by words its examples keep using, not by a word one example happened to hold.
    support: dict[str, int] = field(default_factory=dict)

    def top(self, count: int = 2) -> list[tuple[str, float]]:
        """The best labels and their scores."""
        return self.scores[:count]


class ExampleClassifier:
    """Labels learned from example texts; explainable: each score is a sum of named term weights."""

    def __init__(
        self,
        examples: Sequence[tuple[str, str]],
        normaliser: TermNormaliser,
        keywords: Sequence[tuple[str, str]] = (),
        *,
        pairs: bool = False,
        evidence_only: bool = False,
        refine: Sequence[str] = (),
        written: bool = False,
    ) -> None:
        self.normaliser = normaliser
        self.pairs = pairs
        # Only evidence for a label, none against: each term touches the few labels it speaks for (cheaper,
        # and enough where labels are not rivals but may co-occur, as dialogue acts do).
        self.evidence_only = evidence_only
        self._sparse: dict[str, tuple[tuple[int, float], ...]] = {}
        self.labels: list[str] = list(dict.fromkeys(label for label, _ in [*examples, *keywords]))
        index = {label: i for i, label in enumerate(self.labels)}
        self._index = index
        counts = [0] * len(self.labels)
        df: dict[str, list[int]] = {}
        vocabulary: set[str] = set()
        taught: list[tuple[int, list[str]]] = []
        for label, text in [*examples, *keywords]:
            terms = set(normaliser.features(text, pairs=pairs))
            if not terms:
                continue
            taught.append((index[label], sorted(terms)))
            counts[index[label]] += 1
            for term in terms:
                df.setdefault(term, [0] * len(self.labels))[index[label]] += 1
                if "+" not in term and not term.startswith("~"):
                    vocabulary.add(term.removeprefix(NEGATED))
        total = sum(counts)
        # A label with few examples (small talk) cannot have words many examples share.
        self.support_needed = {
            label: min(CORE_SUPPORT, max(1, math.ceil(counts[i] * SUPPORT_SHARE)))
            for label, i in index.items()
        }
        self._weights: dict[str, tuple[float, ...]] = {}
        self._counts: dict[str, tuple[int, ...]] = {}
        for term, per_label in df.items():
            everywhere = sum(per_label)
            row = []
            for i, n in enumerate(per_label):
                inside = (n + SMOOTHING) / (counts[i] + 2 * SMOOTHING)
                outside = (everywhere - n + SMOOTHING) / (total - counts[i] + 2 * SMOOTHING)
                log_odds = math.log(inside / outside)
                # A label none of whose examples holds the term gains nothing from it, however few
                # examples it has (smoothing alone would make every rare word evidence for it).
                if n == 0:
                    log_odds = min(0.0, log_odds)
                log_odds *= everywhere / (everywhere + SHRINK)
                row.append(min(MAX_WEIGHT, max(MIN_WEIGHT, log_odds)))
            self._weights[term] = tuple(row)
            self._counts[term] = tuple(per_label)
        if refine:
            self._refine(taught, frozenset(index[label] for label in refine if label in index))
        self._sparse = {
            term: tuple((i, w) for i, w in enumerate(row) if w > 0) for term, row in self._weights.items()
        }
        self._keywords: list[tuple[int, frozenset[str], str]] = []
        for label, text in keywords:
            needed = frozenset(normaliser.terms(text))
            # A one-word key phrase is a word like any other: its examples weigh it already.
            if len(needed) > 1:
                self._keywords.append((index[label], needed, text))
        if written:
            # The examples' words as written too: a typo is read towards "помогло", not only "помочь"
            # (for short answers; in requests it corrects too much).
            vocabulary.update(
                word
                for _, text in [*examples, *keywords]
                for word in normaliser.lemmatizer.words(text)
                if word.isalpha() and len(word) >= WRITTEN_MIN
            )
        normaliser.add_vocabulary(vocabulary)

    def _refine(self, taught: list[tuple[int, list[str]]], learners: frozenset[int]) -> None:
        """Correct the counted weights on the examples of `learners` they get wrong or nearly wrong."""
        rows = {term: list(row) for term, row in self._weights.items()}
        size = len(self.labels)
        order = [(gold, terms) for gold, terms in taught if gold in learners]
        shuffle = random.Random(len(order))
        for _ in range(REFINE_PASSES):
            shuffle.shuffle(order)
            for gold, terms in order:
                sums = [0.0] * size
                for term in terms:
                    sums = list(map(add, sums, rows[term]))
                rival = max((i for i in range(size) if i != gold), key=sums.__getitem__)
                if sums[gold] - sums[rival] < REFINE_MARGIN:
                    # Marks ("~question") are in most examples of every label: correcting them would
                    # make a question mark alone evidence.
                    for term in terms:
                        if term[0] == "~":
                            continue
                        row = rows[term]
                        row[gold] += REFINE_STEP
                        row[rival] -= REFINE_STEP
        self._weights = {
            term: tuple(min(MAX_WEIGHT, max(MIN_WEIGHT, weight)) for weight in row)
            for term, row in rows.items()
        }

    def weight(self, term: str, label: str) -> float:
        """One term's learned weight for a label (0 for a term no example has)."""
        row = self._weights.get(term)
        return row[self.labels.index(label)] if row else 0.0

    def rank(self, text: str, *, explain: bool = True) -> Ranking:
        """Every label scored for a text; terms no example has are ignored."""
        terms = self.normaliser.features(text, correct=True, pairs=self.pairs)
        ranking = Ranking(terms=[t for t in terms if "+" not in t and t[0] != "~"] if self.pairs else terms)
        if not terms:
            return ranking
        if self.evidence_only and not explain:
            return self._rank_evidence(terms, ranking)
        weights = self._weights
        rows = [(term, row) for term in dict.fromkeys(terms) if (row := weights.get(term)) is not None]
        if not rows:
            return ranking
        sums = list(rows[0][1])
        for _, row in rows[1:]:
            sums = list(map(add, sums, row))
        bonuses: list[tuple[int, str]] = []
        if self._keywords:
            present = frozenset(terms)
            for label_index, needed, keyword in self._keywords:
                if needed <= present:
                    sums[label_index] += KEYWORD_BONUS
                    bonuses.append((label_index, keyword))
        ranking.scores = sorted(zip(self.labels, sums, strict=True), key=_by_score)
        if not explain:
            return ranking
        counts, index = self._counts, self._index
        for label, _ in ranking.scores[:2]:
            i = index[label]
            keyed = any(j == i for j, _ in bonuses)
            positive = [(term, row[i]) for term, row in rows if row[i] > 0]
            seen = [counts[term][i] for term, _ in positive if term[0] != "~" and "+" not in term]
            ranking.support[label] = sum(seen) + (CORE_SUPPORT if keyed else 0)
            positive += [(f"«{keyword}»", KEYWORD_BONUS) for j, keyword in bonuses if j == i]
            ranking.contributions[label] = sorted(positive, key=_by_score)
        return ranking

    def _rank_evidence(self, terms: list[str], ranking: Ranking) -> Ranking:
        sums: dict[int, float] = {}
        sparse = self._sparse
        for term in dict.fromkeys(terms):
            for i, weight in sparse.get(term, ()):
                sums[i] = sums.get(i, 0.0) + weight
        labels = self.labels
        ranking.scores = sorted(((labels[i], total) for i, total in sums.items()), key=_by_score)
        return ranking


def _by_score(pair: tuple[str, float]) -> float:
    return -pair[1]


class IntentMatcher:
    """Finds the scenario a message belongs to, or says that none does."""

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        normaliser: TermNormaliser,
        out_of_scope: Sequence[str] = (),
        background: Sequence[str] = (),
    ) -> None:
        self.normaliser = normaliser
        self._smalltalk = frozenset(s.id for s in scenarios if s.smalltalk)
        examples = [(s.id, example) for s in scenarios for example in s.match.examples]
        examples += [(OUT_OF_SCOPE, example) for example in out_of_scope]
        examples += [(BACKGROUND, example) for example in background]
        keywords = [(s.id, keyword) for s in scenarios for keyword in s.match.keywords]
        # Only requests are corrected towards: "none of these" is everything else, and pulling it up would
        # teach it the function words every message has.
        requests = [s.id for s in scenarios] + ([OUT_OF_SCOPE] if REFINE_OUT_OF_SCOPE else [])
        self.classifier = ExampleClassifier(examples, normaliser, keywords, pairs=PAIRS, refine=requests)

    def rank(self, text: str) -> Ranking:
        """Every label's score (scenarios and out_of_scope), for evaluation and explanations."""
        return self.classifier.rank(text)

    def match(self, text: str) -> Match | None:
        """The best scenario for text, or None when nothing is named clearly enough."""
        return self.decide(self.classifier.rank(text))

    def decide(self, ranking: Ranking) -> Match | None:
        """The scenario a ranking names: the best request, small talk only in a short message."""
        long_message = len(set(ranking.terms)) > SMALLTALK_MAX_TERMS
        candidates = [
            (label, score)
            for label, score in ranking.scores
            if not (long_message and label in self._smalltalk)
        ]
        if not candidates:
            return None
        best, score = candidates[0]
        requests = [(label, s) for label, s in candidates if label not in self._smalltalk]
        # "привет, нет инета": the request, when it is named clearly, wins over the greeting.
        if (
            best in self._smalltalk
            and requests
            and requests[0][0] not in _NONE_OF_THESE
            and requests[0][1] >= MATCH_THRESHOLD
        ):
            best, score = requests[0]
        if best in _NONE_OF_THESE or score < MATCH_THRESHOLD:
            return None
        needed = self.classifier.support_needed
        if ranking.support.get(best, CORE_SUPPORT) < needed.get(best, CORE_SUPPORT):
            return None
        rest = [(label, s) for label, s in candidates if label != best]
        runner_up, second = rest[0] if rest else (None, 0.0)
        contributions = ranking.contributions.get(best) or []
        shown = ", ".join(f"{term} {weight:+.1f}" for term, weight in contributions[:EVIDENCE_SHOWN])
        also = runner_up if self._second_request(ranking, best, runner_up) else None
        return Match(best, score, f"words: {shown}", margin=score - second, runner_up=runner_up, also=also)

    def _second_request(self, ranking: Ranking, best: str, other: str | None) -> bool:
        """Whether the runner-up is a request of its own: clearly named, by words the best one does not
        use (two readings of the same words are one request, not two)."""
        if other is None or other in _NONE_OF_THESE or other in self._smalltalk or best in self._smalltalk:
            return False
        # Its own words are judged alone: the first request's words count against it in its score.
        own = sum(weight for term, weight in ranking.contributions.get(other, ()) if term[0] != "~")
        if own < MATCH_THRESHOLD + SECOND_REQUEST_EXTRA or ranking.support.get(
            other, 0
        ) < self.classifier.support_needed.get(other, CORE_SUPPORT):
            return False
        mine = {term for term, weight in ranking.contributions.get(best, ()) if weight >= 1.0}
        theirs = {term for term, weight in ranking.contributions.get(other, ()) if weight >= 1.0}
        return bool(theirs) and not (mine & theirs) and not any("+" in t for t in theirs & mine)

    def evidence(self, ranking: Ranking) -> float:
        """The best score of a request (not small talk, not out of scope): how much the message sounds
        like anything the company serves."""
        return max(
            (
                s
                for label, s in ranking.scores
                if label not in _NONE_OF_THESE and label not in self._smalltalk
            ),
            default=0.0,
        )

    def out_of_scope(self, ranking: Ranking, *, mid_flow: bool = False) -> bool:
        """Whether a ranking says the message is about something the company does not serve; in the middle
        of a request it takes more to say so (the client is most likely still talking about it)."""
        threshold = MATCH_THRESHOLD + (MID_FLOW_EXTRA if mid_flow else 0.0)
        if not ranking.scores:
            return False
        best, score = ranking.scores[0]
        return best in _NONE_OF_THESE and score >= threshold
