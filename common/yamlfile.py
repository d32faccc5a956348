"""YAML loading that remembers where every value came from, so editors get `file:line:column` errors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ContentIssue:
    """One problem in a content file, located for the editor."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class ContentError(Exception):
    """A content file (scenario, guide, lexicon) cannot be used; carries every issue found."""

    def __init__(self, issues: Sequence[ContentIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class MarkedDict(dict[Any, Any]):
    """A mapping that knows the line and column of each of its values."""

    marks: dict[Any, yaml.Mark]
    start: yaml.Mark


class MarkedList(list[Any]):
    """A sequence that knows the line and column of each of its items."""

    marks: list[yaml.Mark]
    start: yaml.Mark


ALIAS_REFUSED = "YAML aliases (*{name}) are not allowed in content; write the text out in full here instead"
ANCHOR_REFUSED = (
    "YAML anchors (&{name}) are not allowed in content; delete '&{name}' and write the text out"
    " in full wherever it is repeated"
)


class _Refused(Exception):
    """An anchor or alias met while composing: refused before any node is built or shared."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.line: int = mark.line + 1 if mark else 1
        self.column: int = mark.column + 1 if mark else 1
        self.message = message


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (`yes`, `no`, `on`, `off` stay words) and no anchors or aliases.

    A few lines of aliases expand into billions of values (a YAML bomb); editors never need them.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, ALIAS_REFUSED.format(name=event.anchor))
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(event.start_mark, ANCHOR_REFUSED.format(name=anchor))
        node: yaml.Node | None = super().compose_node(parent, index)
        return node


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _Loader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"))
    )

# libyaml's parser (when compiled in) is ~30x faster than PyYAML's. It calls back into the Python resolvers,
# so `_CLoader` keeps the YAML 1.2 booleans, and its nodes carry the same marks; the two differ only where
# `_FAST_TEXT` and `_read_alike` send a file to `_Loader`, and every error is reported by `_Loader` as before.
# Differential fuzzing (random and mutated content files, parsed both ways) found no other difference.
_FastLoader: type[Any] | None = None
if yaml.__with_libyaml__:

    class _CLoader(yaml.CSafeLoader):
        """libyaml's parser with `_Loader`'s resolvers."""

    _CLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
    _FastLoader = _CLoader
# Text with a character outside this set is read by `_Loader`: its reader refuses non-printable ones, and
# libyaml reads tabs (it accepts them where PyYAML does not), BOMs (PyYAML counts no column for one) and
# NEL, LS and PS line breaks its own way. Text with `&` goes to `_Loader` too: libyaml composes anchors
# and aliases in C, out of reach of the refusal above (an alias needs an anchor, an anchor needs `&`).
_FAST_TEXT = re.compile("[\n\r\x20-\x25\x27-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*")
_STR_TAG = "tag:yaml.org,2002:str"
_QUOTED = ("'", '"')
_BLOCK = ("|", ">")


class _ReadPure(Exception):
    """libyaml's nodes hold a construct that PyYAML may read differently."""


def _read_alike(node: yaml.Node, flow: bool = False) -> bool:
    """Whether libyaml's nodes are surely PyYAML's: none of the constructs where the two part ways."""
    if isinstance(node, yaml.ScalarNode):
        if node.style in _QUOTED:
            return True
        # Empty plain values are marked elsewhere (after `?` keys, in flow collections) and a lone `!` tag
        # reads as '' not null; block scalar headers are checked less strictly; in flow collections
        # PyYAML ends a plain scalar at `?` and reads a leading `:` as a value indicator.
        text: str = node.value
        return bool(text) and node.style not in _BLOCK and not (flow and ("?" in text or text[0] == ":"))
    assert isinstance(node, yaml.CollectionNode)
    flow = flow or bool(node.flow_style)
    if isinstance(node, yaml.SequenceNode):
        return all(_read_alike(item, flow) for item in node.value)
    return all(_read_alike(key, flow) and _read_alike(value, flow) for key, value in node.value)


def _convert(node: yaml.Node, loader: yaml.SafeLoader, path: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        mapping = MarkedDict()
        mapping.marks, mapping.start = {}, node.start_mark
        for key_node, value_node in node.value:
            key = _convert(key_node, loader, path)
            if isinstance(key, MarkedDict | MarkedList):
                mark = key_node.start_mark
                message = "a key must be a single value, not a list or a mapping"
                raise ContentError([ContentIssue(path, mark.line + 1, mark.column + 1, message)])
            if key in mapping:
                mark = key_node.start_mark
                raise ContentError(
                    [ContentIssue(path, mark.line + 1, mark.column + 1, f"duplicate key {key!r}")]
                )
            mapping[key] = _convert(value_node, loader, path)
            mapping.marks[key] = value_node.start_mark
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = MarkedList()
        items.marks, items.start = [], node.start_mark
        for item in node.value:
            items.append(_convert(item, loader, path))
            items.marks.append(item.start_mark)
        return items
    if node.tag == _STR_TAG:
        # What SafeConstructor.construct_yaml_str returns, without its bookkeeping (most values are text).
        return node.value
    return loader.construct_object(node, deep=True)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file into MarkedDict/MarkedList; syntax errors become ContentError."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentError([ContentIssue(shown, 1, 1, f"cannot read file: {exc}")]) from exc
    if _FastLoader is not None and _FAST_TEXT.fullmatch(text):
        try:
            return _parse(_FastLoader(text), shown, check=True)
        except (yaml.YAMLError, ContentError, RecursionError, _ReadPure):
            pass  # reported (or read) by the pure parser, exactly as before
    try:
        return _parse(_Loader(text), shown)
    except _Refused as exc:
        raise ContentError([ContentIssue(shown, exc.line, exc.column, exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ContentError([ContentIssue(shown, line, column, f"YAML syntax: {problem}")]) from exc
    except yaml.YAMLError as exc:
        raise ContentError([ContentIssue(shown, 1, 1, f"YAML: {exc}")]) from exc
    except RecursionError as exc:
        raise ContentError([ContentIssue(shown, 1, 1, "YAML: nested too deeply")]) from exc


def _parse(loader: Any, shown: str, *, check: bool = False) -> Any:
    try:
        node = loader.get_single_node()
        if check and node is not None and not _read_alike(node):
            raise _ReadPure
        return None if node is None else _convert(node, loader, shown)
    finally:
        loader.dispose()


def locate(data: Any, loc: Sequence[int | str]) -> yaml.Mark | None:
    """The mark of the deepest value along a pydantic error location."""
    found: yaml.Mark | None = getattr(data, "start", None)
    current = data
    for step in loc:
        in_dict = isinstance(current, MarkedDict) and step in current
        in_list = isinstance(current, MarkedList) and isinstance(step, int) and 0 <= step < len(current)
        if in_dict or in_list:
            found, current = current.marks[step], current[step]
        else:
            break
    return found


def issue_at(path: Path, data: Any, loc: Sequence[int | str], message: str) -> ContentIssue:
    """A ContentIssue placed at `loc` inside data loaded from `path`."""
    mark = locate(data, loc)
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return ContentIssue(str(path), line, column, message)


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown field; check its spelling"
    return f"{where}: {message}" if where else message


def validate(model: type[ModelT], data: Any, path: Path) -> ModelT:
    """Validate loaded YAML against a pydantic model, turning errors into located ContentIssues."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = [issue_at(path, data, err["loc"], _describe(err)) for err in exc.errors()]
        raise ContentError(issues) from exc
