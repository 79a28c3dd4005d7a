"""The other MongoDB persistence on PyPI, ``mongopersistence==0.3.2``, for the side-by-side columns.

Its dependencies (``motor>=3.1.2,<4``, ``python-telegram-bot>=20.1``) are satisfied by this
project's test environment, so it is installed without dependencies into ``bench/.cache/`` (never
into the project's venv) and driven in-process, on the same event loop and server as the rest.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import subprocess
import sys
from typing import Any

from bench.common import CACHE

NAME = "mongopersistence"
VERSION = "0.3.2"
LABEL = f"{NAME} {VERSION}"
TARGET = CACHE / f"{NAME}-{VERSION}"


def _version(dist: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", importlib.metadata.version(dist))[:3])


def _requirements_met() -> str | None:
    try:
        motor = _version("motor")
        ptb = _version("python-telegram-bot")
    except importlib.metadata.PackageNotFoundError as exc:
        return f"its dependency {exc.name} is not installed (pip install -e '.[test]')"
    if not (3, 1, 2) <= motor < (4,):
        return f"it needs motor>=3.1.2,<4 and this venv has motor {motor}"
    if ptb < (20, 1):
        return f"it needs python-telegram-bot>=20.1 and this venv has {ptb}"
    return None


def load(*, install: bool = True) -> tuple[Any | None, str]:
    """Returns (the ``MongoPersistence`` class of mongopersistence, "") or (None, the reason)."""
    problem = _requirements_met()
    if problem:
        return None, problem
    if not (TARGET / NAME).is_dir():
        if not install:
            return None, f"not installed in {TARGET} (run `python -m bench` once to install it)"
        TARGET.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--target",
                str(TARGET),
                f"{NAME}=={VERSION}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not (TARGET / NAME).is_dir():
            lines = (result.stderr or result.stdout).strip().splitlines()
            return None, f"pip could not install it: {lines[-1] if lines else result.returncode}"
    if str(TARGET) not in sys.path:
        sys.path.append(str(TARGET))
    try:
        module = importlib.import_module(NAME)
    except Exception as exc:
        return None, f"it cannot be imported: {exc!r}"
    return module.MongoPersistence, ""


def motor_client(uri: str, listener: Any) -> Any:
    from motor.motor_asyncio import AsyncIOMotorClient

    return AsyncIOMotorClient(uri, event_listeners=[listener])
