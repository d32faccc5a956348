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


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: `yes`, `no`, `on`, `off` stay words (editors write them)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _Loader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"))
    )


def _convert(node: yaml.Node, loader: yaml.SafeLoader, path: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        mapping = MarkedDict()
        mapping.marks, mapping.start = {}, node.start_mark
        for key_node, value_node in node.value:
            key = _convert(key_node, loader, path)
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
    return loader.construct_object(node, deep=True)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file into MarkedDict/MarkedList; syntax errors become ContentError."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentError([ContentIssue(shown, 1, 1, f"cannot read file: {exc}")]) from exc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _convert(node, loader, shown)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ContentError([ContentIssue(shown, line, column, f"YAML syntax: {problem}")]) from exc
    except yaml.YAMLError as exc:
        raise ContentError([ContentIssue(shown, 1, 1, f"YAML: {exc}")]) from exc
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
