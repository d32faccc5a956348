"""Time and peak memory of a YAML alias bomb in a guide file: `guides lint`, one load, the live watcher.

Each measurement runs in a fresh child process with a memory and time limit, so the figures of a loader
that expands the bomb are bounded too. `--source DIR` runs them against another tree (e.g. an export of
an older commit: `git archive HEAD | tar -x -C /tmp/before`) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run inside the child: `where` is the content copy, `mode` what to measure; prints one JSON line.
_CHILD = r"""
import io, json, resource, sys, time
from pathlib import Path
mode, where, guide, valid = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
bomb = guide.with_suffix(".bomb").read_text(encoding="utf-8")
result = {}
start = time.perf_counter()
try:
    if mode == "lint":
        from bot.cli import main
        out, sys.stdout = sys.stdout, io.StringIO()
        guide.write_text(bomb, encoding="utf-8")
        try:
            result["rc"] = main(["guides", "lint", str(where)])
        finally:
            printed, sys.stdout = sys.stdout.getvalue(), out
        result["said"] = printed.splitlines()[0][:200] if printed else ""
    elif mode == "load":
        from common.yamlfile import ContentError, load_yaml
        guide.write_text(bomb, encoding="utf-8")
        try:
            load_yaml(guide)
            result["said"] = "loaded"
        except ContentError as exc:
            result["said"] = str(exc)[:200]
    else:
        from dialogs.content import LiveContent
        live = LiveContent(where)
        start = time.perf_counter()
        guide.write_text(bomb, encoding="utf-8")
        while live.last_error is None:
            time.sleep(0.01)
        result["rejected_s"] = round(time.perf_counter() - start, 3)
        result["said"] = str(live.last_error)[:200]
        time.sleep(0.05)  # a new modification time, as a later save would have
        edited = time.perf_counter()
        guide.write_text(valid, encoding="utf-8")
        while not any("(исправлено)" in v for v in live.get().guides.variants("greeting", "neutral")):
            time.sleep(0.01)
        result["valid_edit_serving_s"] = round(time.perf_counter() - edited, 3)
except MemoryError:
    result["said"] = "MemoryError (memory limit reached)"
result["seconds"] = round(time.perf_counter() - start, 3)
result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(result, ensure_ascii=False))
"""


def bomb_text(good: str, levels: int, width: int = 9) -> str:
    """The guide with `levels` rows of anchors, each row `width` aliases of the row before it."""
    rows = [f"bomb0: &b0 [{', '.join(['lol'] * width)}]"]
    rows += [f"bomb{n}: &b{n} [{', '.join([f'*b{n - 1}'] * width)}]" for n in range(1, levels)]
    return good + "\n" + "\n".join(rows) + "\n"


def _peak_rss_mb(pid: int) -> int | None:
    """The high-water resident memory of a running process (Linux), before it is stopped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return None


def measure(source: Path, mode: str, levels: int, limit_s: float, limit_gb: float) -> dict[str, object]:
    """One child process measuring `mode` on a fresh content copy with a `levels` bomb."""
    sys.path.insert(0, str(source))
    try:
        from dialogs.content import copy_content
    finally:
        sys.path.pop(0)
    with tempfile.TemporaryDirectory() as directory:
        where = copy_content(Path(directory) / "content")
        guide = where.parent / "common" / "guides" / "neutral.yaml"
        good = guide.read_text(encoding="utf-8")
        guide.with_suffix(".bomb").write_text(bomb_text(good, levels), encoding="utf-8")
        valid = good.replace("Это помощник «{company}».", "Это помощник «{company}» (исправлено).", 1)
        limit = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({int(limit_gb * 2**30)},) * 2)\n"
        command = [sys.executable, "-c", limit + _CHILD, mode, str(where), str(guide), valid]
        env = {**os.environ, "PYTHONPATH": str(source)}
        started = time.perf_counter()
        with subprocess.Popen(
            command, cwd=source, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as child:
            try:
                stdout, stderr = child.communicate(timeout=limit_s)
            except subprocess.TimeoutExpired:
                peak = _peak_rss_mb(child.pid)
                child.kill()
                child.communicate()
                said = f"still running after {limit_s:.0f} s: stopped"
                return {"said": said, "seconds": limit_s, "peak_rss_mb_so_far": peak}
        lines = stdout.strip().splitlines()
        if child.returncode != 0 or not lines:
            took = round(time.perf_counter() - started, 1)
            return {"said": f"child failed (rc {child.returncode}) after {took} s", "stderr": stderr[-300:]}
        result: dict[str, object] = json.loads(lines[-1])
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=ROOT, help="the tonebot tree to measure")
    parser.add_argument("--levels", type=int, default=9, help="bomb levels for the load and the watcher")
    parser.add_argument("--lint-levels", type=int, default=7, help="bomb levels for `guides lint`")
    parser.add_argument("--limit-s", type=float, default=120.0, help="stop a child after this long")
    parser.add_argument("--limit-gb", type=float, default=8.0, help="address-space limit of a child")
    args = parser.parse_args()
    source = args.source.resolve()
    print(f"source {source}")
    for mode, levels in (("lint", args.lint_levels), ("load", args.levels), ("watcher", args.levels)):
        result = measure(source, mode, levels, args.limit_s, args.limit_gb)
        print(f"{mode} ({levels} levels): {json.dumps(result, ensure_ascii=False)}")


if __name__ == "__main__":
    main()
