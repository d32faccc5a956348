"""Phrasing one turn: moments rendered from the guides in the client's persona, grouped into replies."""

from __future__ import annotations

from common.messages import Button, Reply
from common.state import ConversationState
from dialogs.content import Content

# Button labels and problem descriptions are parts of a phrase, not phrases a client would notice repeated.
_NOT_REMEMBERED = ("button.", "problem.")


class Say:
    """Collects phrasings of one turn into replies; keeps the no-repeat memory of the conversation."""

    def __init__(self, content: Content, state: ConversationState, seed: str) -> None:
        self.content, self.state, self.seed = content, state, seed
        self.blocks: list[tuple[list[str], tuple[Button, ...]]] = [([], ())]
        self.moments: list[str] = []
        # The phrasings heard so far, as a set: looked up for every moment said.
        self._used: set[str] | None = None

    def text(self, moment: str, **values: str) -> str:
        """One moment phrased for the client's persona (remembered, so it is not repeated soon)."""
        if self._used is None:
            self._used = set(self.state.used_phrases)
        rendered = self.content.guides.render(moment, self.state.persona, values, self._used, seed=self.seed)
        if not moment.startswith(_NOT_REMEMBERED):
            self.state.remember_phrase(rendered.key)
            self._used.add(rendered.key)
        return rendered.text

    def __call__(self, moment: str, **values: str) -> None:
        self.moments.append(moment)
        self.blocks[-1][0].append(self.text(moment, **values))

    def first(self, moment: str, **values: str) -> None:
        """Say a moment before everything said so far in this turn."""
        self.moments.insert(0, moment)
        self.blocks[0][0].insert(0, self.text(moment, **values))

    def buttons(self, *buttons: Button) -> None:
        """Attach buttons to what was said last; what follows starts a new reply."""
        parts, _ = self.blocks[-1]
        self.blocks[-1] = (parts, tuple(buttons))
        self.blocks.append(([], ()))

    def button(self, moment: str, payload: str) -> Button:
        """A button labelled from the guides."""
        return Button(self.text(moment), payload)

    def empty(self) -> bool:
        """Whether nothing has been said in this turn yet."""
        return not any(parts for parts, _ in self.blocks)

    def said(self, moment: str) -> bool:
        """Whether this moment was said in this turn."""
        return moment in self.moments

    def new_block(self) -> None:
        """Start a new reply message."""
        if self.blocks[-1][0]:
            self.blocks.append(([], ()))

    def replies(self) -> list[Reply]:
        """The turn's replies."""
        return [Reply(" ".join(parts), buttons) for parts, buttons in self.blocks if parts]
