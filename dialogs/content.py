"""The editors' files compiled into what the engine runs on, and reloaded live when they change."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from common.layers import CONTENT_ROOT, DEFAULT_CONTENT_DIR, content_layers
from common.metrics import CONTENT_RELOAD_ERRORS
from common.text import Lemmatizer, shared_lemmatizer
from common.yamlfile import ContentError, ContentIssue
from dialogs import content_cache
from dialogs.campaigns import CampaignBook, campaign_issues, load_campaigns
from dialogs.control import ControlWords
from dialogs.details import DetailExtractor
from dialogs.handoff import HumanRequestDetector
from dialogs.hearing import Hearing
from dialogs.lexicon import Lexicons, load_lexicons
from dialogs.matcher import IntentMatcher
from dialogs.scenarios import ScenarioBook, load_scenarios
from dialogs.teams import TeamBook, check_categories, load_teams
from dialogs.terms import TermNormaliser, answer_normaliser
from dialogs.urgent import UrgentDetector
from personas.classifier import PersonaClassifier
from personas.guides import GuideBook, load_guides
from personas.signals import load_signals

log = logging.getLogger(__name__)
# How often the watcher thread looks at the files: a saved edit serves within this plus one load.
CHECK_INTERVAL_S = 0.1
TEAMS_FILE = "teams.yaml"
DELETED = (
    "file deleted; the last good version keeps serving; restore it, or restart tonebot to run without it"
)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Content:
    """Everything loaded from content files, compiled and cross-checked."""

    scenarios: ScenarioBook
    lexicons: Lexicons
    guides: GuideBook
    matcher: IntentMatcher
    extractor: DetailExtractor
    human_requests: HumanRequestDetector
    personas: PersonaClassifier
    control: ControlWords
    teams: TeamBook
    hearing: Hearing
    urgent: UrgentDetector
    campaigns: CampaignBook


def _cross_check(scenarios: ScenarioBook, guides: GuideBook) -> list[ContentIssue]:
    issues = []
    for scenario in scenarios.scenarios:
        answer = scenario.done.answer
        if not answer:
            continue
        names = [answer]
        for detail in scenario.details:
            spec = scenarios.details[detail]
            if "{" + detail + "}" in answer:
                names = [answer.replace("{" + detail + "}", option.id) for option in spec.options]
        place = scenarios.answer_places.get(scenario.id, ContentIssue("scenarios", 1, 1, ""))
        for name in names:
            if not guides.has(name):
                message = f"scenario {scenario.id!r} answers with moment {name!r}; the neutral guide lacks it"
                issues.append(ContentIssue(place.path, place.line, place.column, message))
    return issues


Snapshot = tuple[tuple[str, float, int], ...]


class _Reuse:
    """What the last load built, with the files (path, mtime, size) or the parts it was built from.

    A reload reuses a part whose files are unchanged and an object whose parts are the same objects, so a
    saved guide re-reads the guides alone. Only what was built without error is kept.
    """

    def __init__(self) -> None:
        self._parts: dict[str, tuple[Snapshot, Any]] = {}
        self._built: dict[str, tuple[tuple[object, ...], Any]] = {}

    def part(self, name: str, files: Snapshot, make: Callable[[], T]) -> T:
        """The part loaded from these files, loaded again only if they changed."""
        kept = self._parts.get(name)
        if kept is not None and kept[0] == files:
            return cast(T, kept[1])
        value = make()
        self._parts[name] = (files, value)
        return value

    def built(self, name: str, parts: tuple[object, ...], make: Callable[[], T]) -> T:
        """The object built from these very part objects, built again only if one is new."""
        kept = self._built.get(name)
        if kept is not None and all(a is b for a, b in zip(kept[0], parts, strict=True)):
            return cast(T, kept[1])
        value = make()
        self._built[name] = (parts, value)
        return value


def _under(snapshot: Snapshot, path: Path) -> Snapshot:
    inside = str(path) + os.sep
    return tuple(entry for entry in snapshot if entry[0] == str(path) or entry[0].startswith(inside))


def _collect(
    issues: list[ContentIssue],
    loader: Callable[[list[Path]], T],
    paths: list[Path],
    reuse: _Reuse | None,
    snapshot: Snapshot,
) -> T | None:
    """One part loaded from every layer's copy of it (reused when none of their files changed)."""
    try:
        if reuse is None:
            return loader(paths)
        files = tuple(entry for path in paths for entry in _under(snapshot, path))
        return reuse.part(paths[-1].name, files, lambda: loader(paths))
    except ContentError as exc:
        issues.extend(exc.issues)
        return None


def _teams(paths: list[Path]) -> TeamBook:
    """The teams file of the last layer that has one."""
    found = [path for path in paths if path.exists()]
    return load_teams(found[-1] if found else paths[-1])


def copy_content(target: Path, company: str = DEFAULT_CONTENT_DIR.name) -> Path:
    """Copy every shipped content directory (each company and the shared layer) to `target`; returns the
    copy of one company's directory, ready to edit and load."""
    shutil.copytree(CONTENT_ROOT, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target / company


def load_content(directory: Path = DEFAULT_CONTENT_DIR, lemmatizer: Lemmatizer | None = None) -> Content:
    """Load scenarios, lexicons and guides from a content directory; ContentError on any problem."""
    return _load(directory, lemmatizer)


def _load(
    directory: Path, lemmatizer: Lemmatizer | None, reuse: _Reuse | None = None, snapshot: Snapshot = ()
) -> Content:
    lemmatizer = lemmatizer or shared_lemmatizer()
    layers = content_layers(directory)
    issues: list[ContentIssue] = []

    def paths(part: str) -> list[Path]:
        return [layer / part for layer in layers]

    scenarios = _collect(issues, load_scenarios, paths("scenarios"), reuse, snapshot)
    lexicons = _collect(issues, load_lexicons, paths("lexicons"), reuse, snapshot)
    guides = _collect(issues, load_guides, paths("guides"), reuse, snapshot)
    signals = _collect(issues, load_signals, paths("personas"), reuse, snapshot)
    teams_paths = paths(TEAMS_FILE)
    teams = _collect(issues, _teams, teams_paths, reuse, snapshot)
    campaigns = _collect(issues, load_campaigns, paths("campaigns"), reuse, snapshot)
    if (
        scenarios is None
        or lexicons is None
        or guides is None
        or signals is None
        or teams is None
        or campaigns is None
    ):
        raise ContentError(issues)
    issues = _cross_check(scenarios, guides)
    moments = {moment for moment in guides.catalogue.moments if guides.has(moment)}
    issues += campaign_issues(campaigns, moments, set(scenarios.categories))
    teams_file = next((path for path in reversed(teams_paths) if path.exists()), teams_paths[-1])
    issues += check_categories(teams, set(scenarios.categories), teams_file)
    if issues:
        raise ContentError(issues)
    reuse = reuse or _Reuse()
    # How short answers are read, shared by the readers of one message (acts, choices, urgency).
    answers = reuse.built("answers", (lexicons,), lambda: answer_normaliser(lexicons.matching, lemmatizer))
    return Content(
        scenarios=scenarios,
        lexicons=lexicons,
        guides=guides,
        matcher=reuse.built(
            "matcher",
            (scenarios, lexicons),
            lambda: IntentMatcher(
                scenarios.scenarios,
                TermNormaliser(lexicons.matching, lemmatizer),
                scenarios.out_of_scope,
                scenarios.background,
            ),
        ),
        extractor=reuse.built(
            "extractor",
            (scenarios, lexicons),
            lambda: DetailExtractor(scenarios.details, scenarios.company.hotlines, lemmatizer, answers),
        ),
        human_requests=reuse.built(
            "human_requests", (lexicons,), lambda: HumanRequestDetector(lexicons.handoff, lemmatizer)
        ),
        personas=reuse.built("personas", (signals,), lambda: PersonaClassifier(signals, lemmatizer)),
        control=reuse.built("control", (lexicons,), lambda: ControlWords(lexicons.control)),
        teams=teams,
        urgent=reuse.built(
            "urgent",
            (lexicons,),
            lambda: UrgentDetector(lexicons.urgent, answers),
        ),
        hearing=reuse.built(
            "hearing",
            (lexicons,),
            lambda: Hearing(lexicons.acts, lexicons.control, answers),
        ),
        campaigns=campaigns,
    )


def layers_snapshot(directory: Path) -> Snapshot:
    """The snapshot of every layer a content directory is made of (itself alone if they cannot be read)."""
    try:
        layers = content_layers(directory)
    except ContentError:
        layers = [directory]
    return tuple(entry for layer in layers for entry in _snapshot(layer))


def _snapshot(directory: Path) -> Snapshot:
    """(path, mtime, size) of every `*.yaml` under a directory, as `directory.rglob` would name them.

    os.scandir makes it ~3x cheaper than rglob: the watcher runs it ten times a second.
    """
    entries = []
    top = str(directory)
    folders = [(top, "" if top == "." else top)]  # (where to scan, how pathlib names what is inside)
    while folders:
        folder, named = folders.pop()
        try:
            with os.scandir(folder) as found:
                children = list(found)
        except OSError:
            continue
        for child in children:
            path = os.path.join(named, child.name)
            if child.name.endswith(".yaml"):
                try:
                    stat = os.stat(child.path)
                except OSError:
                    continue
                entries.append((path, stat.st_mtime, stat.st_size))
            try:
                # Like rglob: into subfolders, but not through links to folders.
                if child.is_dir(follow_symlinks=False):
                    folders.append((child.path, path))
            except OSError:
                continue
    return tuple(sorted(entries))


class _Watcher:
    """One daemon thread per process that looks at the files of every LiveContent, off the request path.

    It holds instances weakly (a dropped LiveContent stops being watched) and ends when none is left; a
    forked child starts its own on its next `get()`, since threads do not survive a fork.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.watched: weakref.WeakSet[LiveContent] = weakref.WeakSet()
        self.thread: threading.Thread | None = None
        # Bumped in a forked child: instances made before the fork re-register on their next look.
        self.epoch = 0

    def watch(self, live: LiveContent) -> None:
        """Watch an instance (again, after a fork) and make sure the thread runs."""
        with self.lock:
            if live._epoch != self.epoch:
                # A thread of the parent may have held it at the fork, and no such thread runs here.
                live._lock = threading.Lock()
                live._epoch = self.epoch
            self.watched.add(live)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="tonebot-content-watcher", daemon=True)
                self.thread.start()

    def unwatch(self, live: LiveContent) -> None:
        """Stop watching an instance."""
        with self.lock:
            self.watched.discard(live)

    def _run(self) -> None:
        while True:
            time.sleep(CHECK_INTERVAL_S)
            with self.lock:
                targets = list(self.watched)
                if not targets:
                    self.thread = None
                    return
            # Instances over one directory (tests make many) share one look at its files per round; it only
            # tells which to check: each reload looks again under its own lock.
            seen: dict[Path, Snapshot] = {}
            for live in targets:
                try:
                    if live.directory not in seen:
                        seen[live.directory] = layers_snapshot(live.directory)
                    if seen[live.directory] != live._snapshot:
                        live.reload_if_changed()
                except Exception:
                    # Whatever happens, the thread keeps watching and the last good version keeps serving.
                    log.exception(
                        "content check of %s failed; the last good version keeps serving", live.directory
                    )
            del targets, live

    def forked(self) -> None:
        """In a forked child: the parent's thread and any lock it held are gone."""
        self.lock = threading.Lock()
        self.thread = None
        # Instances come back one by one when used, each with a fresh lock (see `watch`).
        self.watched = weakref.WeakSet()
        self.epoch += 1


_WATCHER = _Watcher()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHER.forked)


class LiveContent:
    """Content that reloads itself when a file changes; a broken edit keeps the last good version.

    A background thread looks at the files every CHECK_INTERVAL_S and swaps in a fully built Content, so
    `get()` (called on every turn) never reads, stats or parses a file.
    """

    def __init__(self, directory: Path = DEFAULT_CONTENT_DIR, lemmatizer: Lemmatizer | None = None) -> None:
        self.directory = directory
        self._lemmatizer = lemmatizer
        self._snapshot = layers_snapshot(directory)
        self._good_snapshot = self._snapshot
        # With its reuse table: the first reload after a start from the cache reads the changed part alone.
        self._reuse, self._current = content_cache.cached(
            directory, (entry[0] for entry in self._snapshot), lemmatizer is None, self._build
        )
        self._lock = threading.Lock()
        self._epoch = _WATCHER.epoch
        self.last_error: ContentError | None = None
        self.generation = 1
        _WATCHER.watch(self)

    def _build(self) -> tuple[_Reuse, Content]:
        reuse = _Reuse()
        return reuse, _load(self.directory, self._lemmatizer, reuse, self._snapshot)

    def get(self) -> Content:
        """The current content (the watcher thread swaps in a new version when files change)."""
        if self._epoch != _WATCHER.epoch:
            _WATCHER.watch(self)
        return self._current

    def close(self) -> None:
        """Stop watching the files; `get()` keeps returning the version loaded last."""
        _WATCHER.unwatch(self)

    def reload_if_changed(self) -> bool:
        """Reload when files changed; True when a new version is now serving."""
        if self._epoch != _WATCHER.epoch:
            _WATCHER.watch(self)
        with self._lock:
            # Looked at under the lock, so no reload works from an older look than the last one's.
            snapshot = layers_snapshot(self.directory)
            if snapshot == self._snapshot:
                return False
            serving = {entry[0] for entry in self._good_snapshot}
            self._snapshot = snapshot
            try:
                gone = sorted(serving - {entry[0] for entry in snapshot})
                if gone:
                    # A vanished file is far more often an accident (a bad sync, a stray rm) than a plan.
                    raise ContentError([ContentIssue(path, 1, 1, DELETED) for path in gone])
                content = _load(self.directory, self._lemmatizer, self._reuse, snapshot)
            except ContentError as exc:
                self.last_error = exc
                CONTENT_RELOAD_ERRORS.inc()
                log.error("content change rejected, the last good version keeps serving:\n%s", exc)
                return False
            # One reference swap: a turn sees the old version or the new one, whole.
            self._current = content
            self._good_snapshot = snapshot
            self.last_error = None
            self.generation += 1
            log.info("content reloaded from %s (generation %d)", self.directory, self.generation)
            return True
