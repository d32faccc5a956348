"""The package layers hold: the contract in pyproject.toml is kept; the drawing shows no arrow against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.structure import drawing, edges, layers

ROOT = Path(__file__).resolve().parent.parent


def test_the_layers_contract_is_kept() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
    assert "1 kept, 0 broken" in done.stdout


def test_the_drawing_names_every_package_and_marks_no_arrow() -> None:
    packages = [name for layer in layers() for name in layer]
    assert packages[0] == "bench" and packages[-1] == "common"
    assert {"personas", "storage"} in [set(layer) for layer in layers()]
    text = drawing()
    assert "!!" not in text
    assert all(f"\n{name} " in text for name in packages)
    # The bottom imports nothing of the project; the engine leans on it.
    counts = edges(packages)
    assert not any(source == "common" for source, _ in counts)
    assert counts["dialogs", "common"] > 0
