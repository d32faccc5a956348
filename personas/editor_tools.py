"""Editors' tools for tone guides: lint with a coverage matrix, and previews of every phrasing."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from common.layers import LAYER_FILE, content_layers
from common.yamlfile import ContentError
from personas.guides import GuideBook, fill, load_guides
from personas.labels import NEUTRAL, PERSONAS


def _guides_dir(path: Path) -> list[Path]:
    """The guide directories of every layer of a content directory, or the guides directory given."""
    if (path / "guides").is_dir() or (path / LAYER_FILE).is_file():
        return [layer / "guides" for layer in content_layers(path)]
    return [path]


def coverage_matrix(book: GuideBook) -> list[str]:
    """Lines of a table: for each persona, the moments it phrases itself and those it leaves to neutral."""
    moments = sorted(book.catalogue.moments)
    personas = [p for p in PERSONAS if p in book.guides]
    lines = [f"{'persona':<11}{'own':>5}{'neutral':>9}  moments left to neutral"]
    for persona in personas:
        own = book.guides[persona].moments
        missing = [m for m in moments if m not in own]
        grouped = _group(missing)
        lines.append(f"{persona:<11}{len(moments) - len(missing):>5}{len(missing):>9}  {grouped or '-'}")
    absent = [p for p in PERSONAS if p not in book.guides]
    if absent:
        lines.append(f"no guide (everything from neutral): {', '.join(absent)}")
    return lines


def _group(moments: list[str]) -> str:
    families: dict[str, int] = {}
    singles = []
    for moment in moments:
        family = moment.split(".")[0]
        if family in ("button", "problem", "attachment"):
            families[family] = families.get(family, 0) + 1
        else:
            singles.append(moment)
    return ", ".join([*(f"{f}.* ({n})" for f, n in families.items()), *singles])


def lint(path: Path, out: TextIO) -> int:
    """Check guides; errors as file:line:column: message; exit code 1 on errors, else 0."""
    try:
        book = load_guides(_guides_dir(path))
    except ContentError as exc:
        for issue in exc.issues:
            out.write(f"{issue}\n")
        out.write(f"{len(exc.issues)} error(s)\n")
        return 1
    for line in coverage_matrix(book):
        out.write(line + "\n")
    out.write("no errors\n")
    return 0


def preview(path: Path, persona: str, moment: str, out: TextIO) -> int:
    """Print every phrasing of a moment for a persona, filled with the catalogue's sample values."""
    try:
        book = load_guides(_guides_dir(path))
    except ContentError as exc:
        for issue in exc.issues:
            out.write(f"{issue}\n")
        return 1
    if moment not in book.catalogue.moments:
        out.write(f"unknown moment {moment!r}; known: {', '.join(sorted(book.catalogue.moments))}\n")
        return 2
    own = persona in book.guides and moment in book.guides[persona].moments
    source = persona if own else NEUTRAL
    note = "" if own else f" (the {persona} guide does not phrase it: neutral's are used)"
    out.write(f"{persona} / {moment}{note}\n")
    samples = book.catalogue.samples
    for number, template in enumerate(book.variants(moment, source), start=1):
        out.write(f"{number}. {fill(template, samples)}\n")
    return 0
