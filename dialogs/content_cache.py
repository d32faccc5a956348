"""Compiled content kept on disk between starts, so a restart unpickles in ~0.1 s what takes ~2 s to build.

A cache file is used only when it was written for the same content files (their bytes), the same code of
the packages content is built from, the same libraries and Python; anything else (stale, corrupt, written
by someone else) is ignored and replaced. Off unless an entry point turns it on with `configure`.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import io
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

ENV_VAR = "TONEBOT_CACHE_DIR"
OFF = "off"
MAGIC = b"tonebot content cache 1\n"
KEEP_FILES = 8  # one per content directory; tests and benchmarks make many, so old ones go
# Every class a compiled Content holds comes from these packages; their code is part of the key.
CODE_PACKAGES = ("common", "dialogs", "personas")
LIBRARIES = ("pydantic", "pydantic_core", "rapidfuzz", "pymorphy3", "phonenumbers", "yaml")
LEMMATIZER_ID = "shared-lemmatizer"

_directory: Path | None = None


def configure(directory: Path | None) -> None:
    """Where this process keeps compiled content; None turns the cache off (the default)."""
    global _directory
    _directory = directory


def directory_from(env: Mapping[str, str]) -> Path | None:
    """The cache directory the environment asks for: TONEBOT_CACHE_DIR (`off` for none), else the user's
    cache directory (XDG_CACHE_HOME or ~/.cache) + tonebot."""
    chosen = env.get(ENV_VAR, "").strip()
    if chosen.lower() == OFF:
        return None
    if chosen:
        return Path(chosen)
    base = env.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "tonebot"


@functools.lru_cache(maxsize=1)
def _code_digest() -> bytes:
    digest = hashlib.sha256(sys.version.encode())
    root = Path(__file__).resolve().parent.parent
    for package in CODE_PACKAGES:
        for source in sorted((root / package).rglob("*.py")):
            digest.update(str(source.relative_to(root)).encode() + b"\0" + source.read_bytes() + b"\0")
    for name in LIBRARIES:
        module = sys.modules.get(name)
        digest.update(f"{name}={getattr(module, '__version__', None)}\0".encode())
    return digest.digest()


def content_key(directory: Path, files: Iterable[str]) -> bytes:
    """The key of content built from `files` (the layers' YAML, as a snapshot names them) for a directory;
    OSError if one cannot be read."""
    digest = hashlib.sha256(_code_digest())
    digest.update(f"{directory}\0{directory.resolve()}\0".encode())
    for name in files:
        digest.update(name.encode() + b"\0" + Path(name).read_bytes() + b"\0")
    return digest.digest()


def cache_file(cache: Path, directory: Path) -> Path:
    """The one cache file of a content directory."""
    return cache / (hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:32] + ".pickle")


def _rewrap(parameters: dict[str, Any], method: Callable[..., Any]) -> object:
    return functools.lru_cache(**parameters)(method)


class _Pickler(pickle.Pickler):
    """Pickles compiled content: the shared analyser by reference, per-instance caches as empty ones."""

    def __init__(self, stream: io.BytesIO, lemmatizer: object) -> None:
        super().__init__(stream, protocol=pickle.HIGHEST_PROTOCOL)
        self._lemmatizer = lemmatizer

    def persistent_id(self, obj: Any) -> str | None:
        # pymorphy3's dictionaries are the process's one analyser, loaded from its own files.
        return LEMMATIZER_ID if obj is self._lemmatizer else None

    def reducer_override(self, obj: Any) -> Any:
        # `self.x = lru_cache(...)(self._x_uncached)`: pickle cannot name such a wrapper; it is made anew.
        if isinstance(obj, functools._lru_cache_wrapper) and hasattr(obj.__wrapped__, "__self__"):
            return _rewrap, (obj.cache_parameters(), obj.__wrapped__)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, stream: io.BytesIO, lemmatizer: object) -> None:
        super().__init__(stream)
        self._lemmatizer = lemmatizer

    def persistent_load(self, pid: Any) -> Any:
        if pid != LEMMATIZER_ID:
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self._lemmatizer


def _trusted(path: Path) -> bool:
    """Only a file and directory of this user that nobody else may write are unpickled (pickle runs code)."""
    if not hasattr(os, "getuid"):
        return True
    for checked in (path.parent, path):
        status = checked.lstat()
        if status.st_uid != os.getuid() or status.st_mode & 0o022:
            return False
    return path.is_file() and not path.is_symlink()


def read(path: Path, key: bytes, lemmatizer: object) -> Any:
    """The object cached under `key`; None when the file is missing, stale, foreign or unreadable."""
    try:
        if not path.exists() or not _trusted(path):
            return None
        with path.open("rb") as stream:
            if stream.read(len(MAGIC) + len(key)) != MAGIC + key:
                return None
            data = stream.read()
        # Hundreds of thousands of new objects, none of them garbage: collections meanwhile only cost time
        # (half of the load's).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return _Unpickler(io.BytesIO(data), lemmatizer).load()
        finally:
            if enabled:
                gc.enable()
    except Exception as exc:
        # A cut-off write, a disk error, a class that changed shape: building again is always correct.
        log.info("content cache %s unusable (%s); building the content again", path, exc)
        return None


def write(path: Path, key: bytes, value: object, lemmatizer: object) -> None:
    """Store `value` under `key` (atomically: readers see the old file or the new one); failures are
    logged and otherwise ignored."""
    try:
        buffer = io.BytesIO()
        buffer.write(MAGIC + key)
        _Pickler(buffer, lemmatizer).dump(value)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(buffer.getbuffer())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _prune(path.parent, keep=path)
    except Exception as exc:
        log.info("content not cached in %s: %s", path, exc)


def _prune(cache: Path, keep: Path) -> None:
    files = sorted(cache.glob("*.pickle"), key=lambda file: file.stat().st_mtime, reverse=True)
    for old in files[KEEP_FILES:]:
        if old != keep:
            old.unlink(missing_ok=True)


def cached(directory: Path, files: Iterable[str], shared: bool, build: Callable[[], T]) -> T:
    """`build()`, or what it returned before for these very files (see the module's docstring).

    Only content built with the shared analyser (`shared`) is cached: another one cannot be restored.
    """
    cache = _directory
    if cache is None or not shared:
        return build()
    from common.text import shared_lemmatizer

    names = list(files)
    try:
        key = content_key(directory, names)
    except OSError:
        return build()  # a file went away meanwhile: the build reports it
    lemmatizer = shared_lemmatizer()
    path = cache_file(cache, directory)
    found = read(path, key, lemmatizer)
    if found is not None:
        log.debug("content of %s from the cache %s", directory, path)
        return found  # type: ignore[no-any-return]
    value = build()
    try:
        # Saved only if no file changed while it was built: the key must describe what was read.
        unchanged = content_key(directory, names) == key
    except OSError:
        unchanged = False
    if unchanged:
        write(path, key, value, lemmatizer)
    return value
