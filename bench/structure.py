"""The structure drawing: imports between the top-level packages, one arrow a line with how many module
imports it stands for, packages in the order of the layers contract in pyproject.toml (top first).

    python -m bench.structure

An arrow that points up the layers, or across between packages declared independent, is marked `!!`
(`lint-imports` fails on it too).
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def layers() -> list[list[str]]:
    """The layers of the contract, top first; each a list of the packages in it."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (contract,) = (c for c in settings["contracts"] if c["type"] == "layers")
    return [[name.strip() for name in layer.replace(":", "|").split("|")] for layer in contract["layers"]]


def edges(packages: list[str]) -> Counter[tuple[str, str]]:
    """(importer, imported) package → the number of distinct module-to-module imports between them."""
    graph = grimp.build_graph(*packages)
    counts: Counter[tuple[str, str]] = Counter()
    for module in graph.modules:
        source = module.partition(".")[0]
        for imported in graph.find_modules_directly_imported_by(module):
            target = imported.partition(".")[0]
            if target != source and target in packages:
                counts[source, target] += 1
    return counts


def drawing() -> str:
    """The arrows, grouped by importing package, top layer first."""
    stack = layers()
    level = {name: depth for depth, layer in enumerate(stack) for name in layer}
    independent = {name: set(layer) - {name} for layer in stack if len(layer) > 1 for name in layer}
    order = [name for layer in stack for name in layer]
    counts = edges(order)
    width = max(map(len, order))
    lines = ["layers: " + " > ".join(" | ".join(layer) for layer in stack), ""]
    for source in order:
        targets = sorted((t for s, t in counts if s == source), key=order.index)
        if not targets:
            lines.append(f"{source:<{width}}  (imports no other package)")
        for target in targets:
            wrong = level[target] < level[source] or target in independent.get(source, set())
            lines.append(
                f"{source:<{width}} ──▶ {target:<{width}} {counts[source, target]:>4}"
                + ("  !!" if wrong else "")
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(drawing())
