"""Dialogue acts: what a message does in the conversation (answers yes, says it helped, thanks, says goodbye,
asks when it will be fixed...), learned from the examples in lexicons/acts.yaml and the control words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from common.text import Token, fold
from dialogs.control import ControlWords
from dialogs.lexicon import ActsLexicon, ControlLexicon
from dialogs.matcher import ExampleClassifier
from dialogs.terms import TermNormaliser

# Least evidence for an act; some acts need more, as their words are common ones.
ACT_THRESHOLD = 2.5
STRICTER = {"bot_complaint": 6.0, "tried": 4.0, "irony": 7.0}
# An act far weaker than the message's strongest is an echo of shared words, not a second act.
RELATIVE_TO_BEST = 0.45
# Moves (thanks, goodbye, wait...) need a short message: a story that ends with "спасибо" is a story.
SHORT_ANSWER_TERMS = 7
# Acts a message of any length can carry.
ANY_LENGTH = frozenset({"capabilities", "tried"})
# Acts with a length limit of their own: a complaint about the bot is said in a sentence, not in a story.
LONGEST = {"bot_complaint": 12, "irony": 10}
QUESTION_PREFIX = "q_"
# A question needs a question mark or a question word: "спасибо, буду ждать" asks nothing.
QUESTION_WORDS = frozenset(
    {"когда", "сколько", "какой", "как", "что", "где", "почему", "зачем", "ли", "долго", "надолго", "скоро",
     "куда", "откуда", "чей", "можно", "eta"}
)  # fmt: skip
# Question words that also join clauses ("спасибо, что ответили"): a question only when they open it.
OPENING_ONLY = frozenset({"что", "как", "можно"})
FILLERS = frozenset({"а", "и", "ну", "так", "вот", "скажите", "подскажите"})
# Other question words ask from anywhere in the first words ("это надолго", "интернет когда будет").
QUESTION_WITHIN = 3
# Answers to "Помогло?" and to yes/no questions.
POSITIVE = ("helped", "yes")
NEGATIVE = ("not_helped", "no", "partly")
IRONY = "irony"
# Moves no one makes with a question mark.
NOT_ASKED = frozenset({"goodbye"})


@dataclass(slots=True)
class Heard:
    """The acts found in one message, with their evidence (summed word weights).

    `acts` are those the message carries on its own; `answers` the evidence for each act whatever the
    message's length, for reading it as the answer to a question the bot asked.
    """

    acts: dict[str, float] = field(default_factory=dict)
    answers: dict[str, float] = field(default_factory=dict)
    terms: list[str] = field(default_factory=list)

    def has(self, act: str) -> bool:
        """Whether the message carries this act."""
        return act in self.acts

    @property
    def question(self) -> str | None:
        """The question asked inside the flow ("когда почините?"), without its prefix, if any."""
        questions = [(score, act) for act, score in self.acts.items() if act.startswith(QUESTION_PREFIX)]
        return max(questions)[1].removeprefix(QUESTION_PREFIX) if questions else None

    def consent(self) -> bool | None:
        """As the answer to "Позвать специалиста?": yes or no only; "ничего не помогает" is no refusal."""
        yes, no = self.answers.get("yes", 0.0), self.answers.get("no", 0.0)
        if not yes and not no:
            return None
        return yes >= no

    def leaning(self) -> bool | None:
        """As the answer to a yes/no question ("Помогло?"): True for yes, False for no (or only partly),
        None when it answers neither way."""
        positive = max((self.answers.get(act, 0.0) for act in POSITIVE), default=0.0)
        negative = max((self.answers.get(act, 0.0) for act in NEGATIVE), default=0.0)
        if "tried" in self.acts and "helped" not in self.acts:
            # "Я это всё уже делал, не помогает": the steps were taken before, the trouble is still there.
            return False
        if IRONY in self.acts:
            # "Ага, помогло, как же": the yes is the irony's, the answer is no.
            negative, positive = max(negative, positive, self.acts[IRONY]), 0.0
        if not positive and not negative:
            # "Перезагружал уже трижды": the first steps were done, and the question is still open.
            return False if "tried" in self.acts else None
        return positive > negative

    def explain(self) -> dict[str, float]:
        """The acts and their evidence, for `--explain`."""
        return {act: round(score, 2) for act, score in self.acts.items()}


class Hearing:
    """Finds dialogue acts in a message."""

    def __init__(
        self,
        acts: ActsLexicon,
        control: ControlLexicon,
        answers: TermNormaliser,
    ) -> None:
        self.lemmatizer = lemmatizer = answers.lemmatizer
        # Every word counts in an answer ("не надо", "да, давайте"), bare negations too.
        self.normaliser = answers
        examples = [
            (act, text) for act, text in _examples(acts.acts, control) if not self._lone_imperative(text)
        ]
        self.classifier = ExampleClassifier(examples, self.normaliser, evidence_only=True, written=True)
        self.acts = frozenset(label for label, _ in examples)
        # "Tried" needs one of its own verbs in the past ("переустановил"), not just its nouns ("приложение").
        self._tried_verbs = frozenset(
            token.lemma
            for act, text in examples
            if act == "tried"
            for token in lemmatizer.tokens(text)
            if token.pos in ("VERB", "INFN", "PRTS")
        )
        self._requires = {
            act: [frozenset(fold(w) for w in group) for group in groups]
            for act, groups in acts.requires.items()
        }
        # The editors' exact short answers ("нет", "да, позовите") always count, whatever the weights say.
        self.control = ControlWords(control)

    def _lone_imperative(self, text: str) -> bool:
        """A one-word imperative ("забудьте") taught as its lemma would hear every tense of it ("забыл
        пароль"); the control words still match it exactly."""
        tokens = self.lemmatizer.tokens(text)
        return len(tokens) == 1 and "impr" in tokens[0].tags

    def hear(self, text: str) -> Heard:
        """The acts of one message."""
        ranking = self.classifier.rank(text, explain=False)
        heard = Heard(terms=ranking.terms)
        short = len(ranking.terms) <= SHORT_ANSWER_TERMS
        floor = RELATIVE_TO_BEST * ranking.scores[0][1] if ranking.scores else 0.0
        tokens = self.lemmatizer.tokens(text)
        asks = "?" in text or _asks_without_mark(tokens)
        # "Перезагружал": the first steps are something the client did, so a verb in the past.
        did = any("past" in t.tags and t.lemma in self._tried_verbs for t in tokens)
        for act, score in ranking.scores:
            if score < ACT_THRESHOLD:
                break
            groups = self._requires.get(act, ())
            if not all(any(t.lemma in group or t.word in group for t in tokens) for group in groups):
                # Without its own words the act is not there at all, not even as an answer's leaning.
                continue
            heard.answers[act] = score
            if score < max(floor, STRICTER.get(act, ACT_THRESHOLD)):
                continue
            question = act.startswith(QUESTION_PREFIX)
            if (question and not asks) or (act == "tried" and not did):
                continue
            if act in NOT_ASKED and "?" in text:
                # "А интернет пока не отключат?": "пока" in a question is "for now", not "bye".
                continue
            fits = len(ranking.terms) <= LONGEST[act] if act in LONGEST else short
            if fits or act in ANY_LENGTH or question:
                heard.acts[act] = score
        control = self.control
        for act, exact in (
            ("yes", control.is_yes),
            ("no", control.is_no),
            ("helped", control.is_resolved),
            ("cancel", control.is_cancel),
        ):
            if exact(text):
                heard.acts[act] = heard.answers[act] = max(heard.acts.get(act, 0.0), ACT_THRESHOLD + 1.0)
        return heard


def _asks_without_mark(tokens: list[Token]) -> bool:
    """Whether a message with no question mark is still a question: it opens with a question word."""
    words = [t for t in tokens if t.lemma not in FILLERS]
    if any(t.lemma == "ли" for t in words):
        return True
    if words and words[0].lemma in QUESTION_WORDS:
        return True
    return any(t.lemma in QUESTION_WORDS and t.lemma not in OPENING_ONLY for t in words[:QUESTION_WITHIN])


def _examples(acts: Mapping[str, list[str]], control: ControlLexicon) -> list[tuple[str, str]]:
    """Every act's examples: acts.yaml's, and the control words that mean the same (editors' older lists)."""
    examples = [(act, text) for act, texts in acts.items() for text in texts]
    for act, texts in (("yes", control.yes), ("no", control.no), ("cancel", control.cancel)):
        examples += [(act, text) for text in texts]
    examples += [("helped", text) for text in control.resolved]
    return list(dict.fromkeys(examples))
