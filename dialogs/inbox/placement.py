"""Where a new list item goes in an editor's YAML file, and the exact text to paste there.

A content file is read as YAML nodes (which know their lines and columns) and the text is built to fit the
file as it is written: a block list gets a line at its items' indentation after its last item, a flow list
(`[a, b]`) gets `, 'new'` before its `]`, and a missing key is added to its mapping with the list under it.
Nothing is written here: the editor pastes, and `Insertion.apply` does what the paste does, for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

INDENT = 2


@dataclass(frozen=True, slots=True)
class Insertion:
    """Text to paste into a file, and where: whole lines after `line` (column None, `line` 0 for the top),
    or into `line` before `column` (both from 1). A new file's text is all of it."""

    path: Path
    line: int
    column: int | None
    text: str
    new_file: bool = False

    def apply(self, source: str) -> str:
        """The file's text after the paste."""
        if self.new_file:
            return self.text
        lines = source.splitlines(keepends=True)
        if self.column is None:
            head = lines[: self.line]
            if head and not head[-1].endswith("\n"):
                head[-1] += "\n"
            return "".join([*head, self.text + "\n", *lines[self.line :]])
        row = lines[self.line - 1]
        cut = self.column - 1
        lines[self.line - 1] = row[:cut] + self.text + row[cut:]
        return "".join(lines)


def yaml_text(text: str) -> str:
    """One line of YAML that reads back as exactly `text`: single-quoted (`'it''s'`), or double-quoted
    with escapes when the text holds what single quotes cannot (control characters, line breaks)."""
    quoted = yaml.safe_dump(text, default_style="'", allow_unicode=True, width=2**31 - 1).rstrip("\n")
    if "\n" in quoted:
        quoted = yaml.safe_dump(text, default_style='"', allow_unicode=True, width=2**31 - 1).rstrip("\n")
    if "\n" in quoted:
        raise ValueError("the text does not fit on one YAML line")
    return quoted


def read_nodes(path: Path) -> yaml.Node | None:
    """A YAML file's node tree (None when the file is missing or empty)."""
    if not path.is_file():
        return None
    node: yaml.Node | None = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    return node


def value_of(mapping: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node under a key of a mapping node (None when it is not a mapping or lacks the key)."""
    entry = _entry(mapping, key)
    return None if entry is None else entry[1]


def _entry(mapping: yaml.Node | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(mapping, yaml.MappingNode):
        return None
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def item_with(sequence: yaml.Node | None, field: str, value: str) -> yaml.Node | None:
    """The mapping in a sequence whose `field` is `value` (a scenario by its id)."""
    if not isinstance(sequence, yaml.SequenceNode):
        return None
    for item in sequence.value:
        found = value_of(item, field)
        if isinstance(item, yaml.MappingNode) and isinstance(found, yaml.ScalarNode) and found.value == value:
            return item
    return None


def add_item(
    path: Path, root: yaml.Node | None, within: yaml.Node | None, keys: Sequence[str], item: str
) -> Insertion:
    """Add `item` (one YAML line, see yaml_text) to the list reached from `within` by `keys`, adding the
    keys that are missing. `root` is the file's tree (read_nodes), `within` a mapping in it; a missing
    file is created, an empty one (comments alone) gets the keys at its end."""
    if root is None:
        if not path.is_file():
            return Insertion(path, 0, None, _block(keys, item, 0), new_file=True)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        return Insertion(path, lines, None, _block(keys, item, 0))
    if within is None:
        raise ValueError(f"{path}: nothing to add to")
    node = within
    for depth, key in enumerate(keys):
        entry = _entry(node, key)
        if entry is None:
            return _add_keys(path, node, keys[depth:], item)
        key_node, child = entry
        if _is_null(child):
            # "examples:" with nothing after it: the list goes under the key.
            rest = _block(keys[depth + 1 :], item, key_node.start_mark.column + INDENT)
            return Insertion(path, key_node.start_mark.line + 1, None, rest)
        node = child
    return _append(path, node, item)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _block(keys: Sequence[str], item: str, indent: int) -> str:
    """Nested keys in block style, the list of one item at the bottom (the item alone without keys)."""
    lines = [" " * (indent + INDENT * depth) + f"{key}:" for depth, key in enumerate(keys)]
    lines.append(" " * (indent + INDENT * len(keys)) + f"- {item}")
    return "\n".join(lines)


def _flow(keys: Sequence[str], item: str) -> str:
    """Nested keys in flow style: `a: {b: [item]}`."""
    text = f"[{item}]"
    for key in reversed(keys[1:]):
        text = f"{{{key}: {text}}}"
    return f"{keys[0]}: {text}"


def _append(path: Path, node: yaml.Node, item: str) -> Insertion:
    if not isinstance(node, yaml.SequenceNode):
        raise ValueError(f"{path}: line {node.start_mark.line + 1}: expected a list here")
    if node.flow_style:
        return _before_closing(path, node, item)
    return Insertion(path, _last_line(node) + 1, None, " " * node.start_mark.column + f"- {item}")


def _add_keys(path: Path, node: yaml.Node, keys: Sequence[str], item: str) -> Insertion:
    if not isinstance(node, yaml.MappingNode):
        raise ValueError(f"{path}: line {node.start_mark.line + 1}: expected a mapping here")
    if node.flow_style:
        return _before_closing(path, node, _flow(keys, item))
    return Insertion(path, _last_line(node) + 1, None, _block(keys, item, node.start_mark.column))


def _before_closing(path: Path, node: yaml.CollectionNode, entry: str) -> Insertion:
    """`entry` as the last entry of a flow collection, just before its closing bracket."""
    end = node.end_mark  # just after the bracket
    text = entry
    if node.value:
        last = node.value[-1]
        last_end = (last[1] if isinstance(last, tuple) else last).end_mark
        between = _text_between(node, last_end, end)
        # A trailing comma ("[a, b,]") is already there.
        text = (" " if "," in between else ", ") + entry
    return Insertion(path, end.line + 1, end.column, text)


def _text_between(node: yaml.Node, start: yaml.Mark, end: yaml.Mark) -> str:
    buffer = getattr(start, "buffer", None)
    if isinstance(buffer, str):
        return buffer[start.index : end.index - 1]
    return ""


def _last_line(node: yaml.Node) -> int:
    """The line (from 0) of a node's last character."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        end = node.end_mark
        # A block scalar ends at the start of the line after it.
        return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line
    if isinstance(node, yaml.SequenceNode):
        return _last_line(node.value[-1]) if node.value else node.start_mark.line
    if isinstance(node, yaml.MappingNode):
        return _last_line(node.value[-1][1]) if node.value else node.start_mark.line
    return node.end_mark.line
