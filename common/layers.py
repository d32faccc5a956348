"""Content layers: a company's directory may build on shared ones (`content.yaml`: `extends: ../common`).

Every part (scenarios, guides, lexicons, persona signals, teams) is read from each layer in order; a later
layer adds to an earlier one and replaces what it names again (a scenario by id, a guide moment by name).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from common.yamlfile import ContentError, issue_at, load_yaml, validate

LAYER_FILE = "content.yaml"
CONTENT_ROOT = Path(__file__).resolve().parent.parent / "content"
# The shipped companies are directories of CONTENT_ROOT; the provider is the default.
DEFAULT_CONTENT_DIR = CONTENT_ROOT / "provider"
MAX_DEPTH = 8


class LayerFile(BaseModel):
    """A content directory's own description: which directories it builds on."""

    model_config = ConfigDict(extra="forbid")
    extends: list[str] = Field(default_factory=list, description="Directories under this one, relative.")
    about: str = ""


def content_layers(directory: Path) -> list[Path]:
    """The directories a content directory is made of, the shared ones first and itself last."""
    return _layers(directory.resolve() if directory.exists() else directory, ())


def _layers(directory: Path, chain: tuple[Path, ...]) -> list[Path]:
    path = directory / LAYER_FILE
    if not path.is_file():
        return [directory]
    data = load_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("extends"), str):
        data["extends"] = [data["extends"]]
    spec = validate(LayerFile, data if data is not None else {}, path)
    layers: list[Path] = []
    for index, relative in enumerate(spec.extends):
        base = (directory / relative).resolve()
        if base == directory or base in chain or len(chain) >= MAX_DEPTH:
            raise ContentError([issue_at(path, data, ("extends", index), f"{relative!r} extends itself")])
        if not base.is_dir():
            message = f"no directory {relative!r} (looked for {base}); fix the path or remove it"
            raise ContentError([issue_at(path, data, ("extends", index), message)])
        for layer in _layers(base, (*chain, directory)):
            if layer not in layers:
                layers.append(layer)
    return [*layers, directory]


def present(paths: list[Path]) -> list[Path]:
    """The paths that exist, in order."""
    return [p for p in paths if p.exists()]
