"""The YAML an editor copies from the misunderstood inbox to teach the bot a message: an example for a
scenario (`match: examples:` of the file that defines it), words for a dialogue act (the company's
`lexicons/acts.yaml`), and a conversation test with the message as its first turn (`tests/inbox.yaml`, in
the format of the shipped tests). Each comes with the place to paste it, read from the files as they are.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

from dialogs.inbox.grouping import ALIKE_RATIO, normalise
from dialogs.inbox.placement import Insertion, add_item, item_with, read_nodes, value_of, yaml_text
from dialogs.matcher import IntentMatcher

TESTS_FILE = Path("tests") / "inbox.yaml"
ACTS_FILE = Path("lexicons") / "acts.yaml"
TEST_KIND = "inbox"
NEW_TESTS_HEADER = (
    "# Разговоры из непонятого (консоль → Непонятое): бот должен их понимать.\n"
    "# Запуск: tonebot test. Формат — как в остальных файлах tests/.\n"
)


@dataclass(frozen=True, slots=True)
class Snippet:
    """What an editor copies, where it goes, and how to say so."""

    text: str
    insertion: Insertion
    where: str


def scenario_example(layers: Sequence[Path], scenario_id: str, text: str) -> Snippet:
    """`text` as one more example of a scenario, in the file of the layer that defines it (the company's
    own, or the shared one). LookupError when no file defines it; ValueError when its file is not shaped
    as the loader expects."""
    found = None
    for layer in layers:
        for file in sorted((layer / "scenarios").glob("*.yaml")):
            root = _nodes(file)
            node = item_with(value_of(root, "scenarios"), "id", scenario_id)
            if node is not None:
                found = (file, root, node)  # a later layer's scenario replaces an earlier one
    if found is None:
        raise LookupError(f"no scenario {scenario_id!r} in the content files")
    file, root, node = found
    insertion = add_item(file, root, node, ("match", "examples"), yaml_text(text))
    what = f"примеры сценария {scenario_id}"
    return Snippet(insertion.text, insertion, _where(insertion, layers, what))


def act_words(layers: Sequence[Path], act: str, text: str) -> Snippet:
    """`text` as one more example of a dialogue act, in the company's own acts file (its lists add to the
    shared layer's)."""
    file = layers[-1] / ACTS_FILE
    root = _nodes(file)
    insertion = add_item(file, root, root, ("acts", act), yaml_text(text))
    return Snippet(insertion.text, insertion, _where(insertion, layers, f"слова акта {act}"))


def conversation_test(layers: Sequence[Path], test_id: str, text: str, scenario_id: str | None) -> Snippet:
    """A conversation test whose first turn is `text`, expecting the scenario (when one is chosen) to be
    recognised without a handoff or a "not understood": it fails until the content teaches the bot."""
    file = layers[-1] / TESTS_FILE
    scenarios = f"[{scenario_id}]" if scenario_id else "[]"
    body = "\n".join(
        [
            f"- id: {yaml_text(test_id) if _quoted(test_id) else test_id}",
            f"  kind: {TEST_KIND}",
            "  turns:",
            f"    - {{text: {yaml_text(text)}}}",
            f"  expect: {{details: {{}}, fallbacks_max: 0, handoff: false, scenarios: {scenarios}}}",
        ]
    )
    root = _nodes(file)
    if not file.is_file():
        insertion = Insertion(file, 0, None, NEW_TESTS_HEADER + body, new_file=True)
    elif root is None or (isinstance(root, yaml.SequenceNode) and not root.flow_style):
        lines = len(file.read_text(encoding="utf-8").splitlines())
        insertion = Insertion(file, lines, None, body)
    else:
        raise ValueError(f"{file}: expected a list of dialogs (- id: ..., turns: ...)")
    return Snippet(body, insertion, _where(insertion, layers, "тесты разговоров"))


def _quoted(value: str) -> bool:
    """Whether a value needs quotes to read back as itself (ids like "inbox-12" do not)."""
    return not value or yaml.safe_load(value) != value or any(ch in value for ch in ":#{}[],&*!|>'\"%@`")


def closest_scenario(matcher: IntentMatcher, scenario_ids: Collection[str], text: str) -> str | None:
    """The scenario the bot's matcher ranks first for a text, however unsure: an editor's first guess."""
    for label, score in matcher.rank(text).scores:
        if label in scenario_ids and score > 0:
            return label
    return None


def closest_act(acts: Mapping[str, Sequence[str]], text: str) -> str | None:
    """The dialogue act with an example alike to the text as the inbox groups alike messages
    (token_sort_ratio of ALIKE_RATIO), or None: an editor's first guess, as closest_scenario is."""
    examples = [(act, normalise(example)) for act, words in acts.items() for example in words]
    found = process.extractOne(
        normalise(text),
        [example for _, example in examples],
        scorer=fuzz.token_sort_ratio,
        processor=None,
        score_cutoff=ALIKE_RATIO,
    )
    return None if found is None else examples[found[2]][0]


def shown_path(path: Path, layers: Sequence[Path]) -> str:
    """A content file as editors name it: from the content directory's parent (`content/provider/...`)."""
    base = layers[-1].parent.parent
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _where(insertion: Insertion, layers: Sequence[Path], what: str) -> str:
    """Where to paste, as the page tells the editor."""
    name = shown_path(insertion.path, layers)
    shared = "" if insertion.path.is_relative_to(layers[-1]) else " Этот файл общий для всех компаний."
    if insertion.new_file:
        return f"Создайте файл {name} с этим текстом ({what}).{shared}"
    if insertion.column is None:
        if insertion.line == 0:
            return f"Вставьте в начало файла {name} ({what}).{shared}"
        return f"Вставьте в файл {name} после строки {insertion.line} ({what}).{shared}"
    return f"Допишите в файл {name}, в строку {insertion.line}, перед закрывающей скобкой ({what}).{shared}"


def _nodes(path: Path) -> yaml.Node | None:
    """A file's node tree, read again only when the file changed (editors keep saving)."""
    if not path.is_file():
        return None
    stat = path.stat()
    return _read(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _read(path: str, _mtime_ns: int, _size: int) -> yaml.Node | None:
    return read_nodes(Path(path))
