"""Runs python-telegram-bot's own persistence tests against MongoPersistence (``make conformance``).

1. Fetches the sdist of the installed PTB version into ``.cache/ptb/`` (once; it holds ``tests/``).
2. Makes ``.venv-conformance`` with the test dependencies PTB pins for itself (its
   ``[dependency-groups] tests``: an older pytest-asyncio than ours), PTB with its extras, and
   this package.
3. Copies the sdist to a fresh work folder, applies ``test_picklepersistence.patch`` (every
   adapted line is marked ``# ADAPTED(mongo): why``) and runs, with the ``ptb_conformance``
   plugin: all three modules in eager mode, ``test_basepersistence.py`` in lazy and refresh mode.
4. Prints the counts (ported / passed / left out, with reasons) and exits non-zero on a failure.

Usage: ``python tests/conformance/run.py [MODE ...] [-- PYTEST_ARGS]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = ROOT / ".cache" / "ptb"
VENV = ROOT / ".venv-conformance"
MODULES = {
    "eager": [
        "tests/ext/test_basepersistence.py",
        "tests/ext/test_picklepersistence.py",
        "tests/ext/test_dictpersistence.py",
    ],
    "lazy": ["tests/ext/test_basepersistence.py"],
    "refresh": ["tests/ext/test_basepersistence.py"],
}
SKIPPED_TEST_DEPS = ("build", "beautifulsoup4", "pytest-cov", "pytest-xdist")
"""PTB test dependencies these modules do not use (release builds, doc parsing, coverage)."""


def run(*command: str | Path, **kwargs: object) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], check=True, **kwargs)  # type: ignore[call-overload]


def sdist(ptb: str) -> Path:
    """The unpacked sdist of PTB ``ptb``, downloaded once."""
    unpacked = CACHE / f"python_telegram_bot-{ptb}"
    if (unpacked / "tests" / "ext").is_dir():
        return unpacked
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"python_telegram_bot-{ptb}.tar.gz"
    if not archive.exists():
        run(
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"python-telegram-bot=={ptb}",
            "-d",
            CACHE,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return unpacked


def venv(source: Path, ptb: str) -> Path:
    """``.venv-conformance`` with PTB's pinned test dependencies (made again when they change)."""
    groups = tomllib.loads((source / "pyproject.toml").read_text()).get("dependency-groups", {})
    pinned = groups.get("tests", [])
    tests = [d for d in pinned if d.split("=")[0].split(">")[0] not in SKIPPED_TEST_DEPS]
    ours = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    server = [d for d in ours["test"] if d.startswith("secantusdb")]
    wanted = [f"python-telegram-bot[all,ext]=={ptb}", *tests, *server]
    stamp = VENV / ".installed.json"
    python = VENV / "bin" / "python"
    if stamp.exists() and json.loads(stamp.read_text()) == wanted and python.exists():
        return python
    if not python.exists():
        run(sys.executable, "-m", "venv", VENV)
    run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(python, "-m", "pip", "install", "--quiet", "-e", ROOT, *wanted)
    stamp.write_text(json.dumps(wanted))
    return python


def work_copy(source: Path) -> Path:
    """A fresh copy of the sdist with the adapted PicklePersistence tests."""
    work = CACHE / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    run("git", "apply", "-p1", HERE / "test_picklepersistence.patch", cwd=work)
    return work


def main(argv: list[str]) -> int:
    modes = [a for a in argv if a in MODULES] or list(MODULES)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    ptb = version("python-telegram-bot")
    source = sdist(ptb)
    python = venv(source, ptb)
    work = work_copy(source)
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    failed = False
    totals: Counter[str] = Counter()
    left_out: Counter[str] = Counter()
    for mode in modes:
        report = work / f"report-{mode}.json"
        command = [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "ptb_conformance",
            "-p",
            "no:cacheprovider",
            *MODULES[mode],
            *extra,
        ]
        print(
            f"\n=== PTB {ptb} persistence tests against MongoPersistence, {mode} mode", flush=True
        )
        done = subprocess.run(
            command,
            check=False,
            cwd=work,
            env={**env, "MP_CONFORMANCE_MODE": mode, "MP_CONFORMANCE_REPORT": str(report)},
        )
        failed |= done.returncode != 0
        result = json.loads(report.read_text()) if report.exists() else {}
        outcomes = Counter(result.get("outcomes", {}).values())
        totals.update({f"{mode} {k}": v for k, v in outcomes.items()})
        left_out.update(f"{mode}: {r}" for r in result.get("left_out", {}).values())
    print(f"\n=== Conformance summary (PTB {ptb}, modes: {', '.join(modes)})")
    for key, count in sorted(totals.items()):
        print(f"{count:5d}  {key}")
    print("left out:")
    for reason, count in sorted(left_out.items()):
        print(f"{count:5d}  {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
