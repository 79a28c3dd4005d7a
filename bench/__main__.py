"""``python -m bench [--quick] [--only S1,S3] [--output FILE] [--profile]``.

Starts a local SecantusDB (in memory) unless ``MONGODB_URI`` points at a server, runs the scenarios
for mongo_persistence and, side by side on the same server, for PTB's PicklePersistence and
DictPersistence, ``mongopersistence==0.3.2`` and plain PyMongo (the floor), then writes
``bench/RESULTS.md`` (``--quick``: ``bench/.cache/RESULTS-quick.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import CACHE, Settings, machine, versions

HERE = Path(__file__).resolve().parent
SCENARIOS = ("S1", "S2", "S3", "S4", "S5")


@contextmanager
def server() -> Iterator[tuple[str, str]]:
    """Yields (uri, description): MONGODB_URI, or a local in-memory SecantusDB."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        from mongo_persistence import redact_uri

        yield uri, f"MONGODB_URI ({redact_uri(uri)})"
        return
    from scripts.local_server import LocalServer

    CACHE.mkdir(parents=True, exist_ok=True)
    local = LocalServer(storage=":memory:", log_path=CACHE / "secantusd.log")
    local.start()
    try:
        yield local.uri, "local SecantusDB (`secantusd-py --storage-path :memory:`) on 127.0.0.1"
    finally:
        local.stop()


async def run_all(
    uri: str,
    settings: Settings,
    *,
    only: tuple[str, ...] = SCENARIOS,
    workdir: Path,
    install: bool = True,
) -> tuple[list[object], str]:
    """Runs the chosen scenarios; returns (rows, the server's version)."""
    from bench import scenarios

    env = scenarios.Env(uri, settings, workdir, install=install)
    if env.mp_class is None:
        print(f"note: the {scenarios.MP} columns are skipped: {env.mp_reason}", flush=True)
    await env.open()
    rows: list[object] = []
    try:
        info = await env.raw.admin.command("buildInfo")
        version = str(info.get("version", "?"))
        if "S1" in only or "S2" in only:
            for n in settings.s1_sizes:
                if "S1" in only:
                    rows.append(await scenarios.s1_new(env, n))
                dirty, idle = await scenarios.s1_dirty_and_s2_idle(env, n)
                if "S1" in only:
                    rows.append(dirty)
                if "S2" in only:
                    rows.append(idle)
        if "S3" in only:
            rows += await scenarios.s3_startup(env)
        if "S4" in only:
            rows += await scenarios.s4_end_to_end(env)
        if "S5" in only:
            rows += scenarios.s5_codec(env)
    finally:
        await env.close()
    return rows, version


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="e.g. S1,S3")
    parser.add_argument("--output", type=Path, help="where to write the Markdown results")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument(
        "--no-install", action="store_true", help="do not pip-install mongopersistence"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile S1 and S5 of mongo_persistence instead"
    )
    args = parser.parse_args()
    settings = Settings.quick_settings() if args.quick else Settings()
    settings.memory = settings.memory and not args.no_memory
    only = tuple(part.strip().upper() for part in args.only.split(",") if part.strip())
    if unknown := set(only) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    if args.profile:
        from bench.profiling import profile

        with server() as (uri, _):
            asyncio.run(profile(uri, settings))
        return 0

    from bench.report import render

    output = args.output or (CACHE / "RESULTS-quick.md" if args.quick else HERE / "RESULTS.md")
    started = time.perf_counter()
    with server() as (uri, description), tempfile.TemporaryDirectory() as workdir:
        rows, version = asyncio.run(
            run_all(uri, settings, only=only, workdir=Path(workdir), install=not args.no_install)
        )
    elapsed = time.perf_counter() - started
    text = render(
        rows,  # type: ignore[arg-type]
        machine=machine(),
        versions=versions(),
        server=f"{description}, reports version {version}",
        settings=settings,
        elapsed=elapsed,
        command="python -m bench" + (" --quick" if args.quick else ""),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    summary = text.split("## Summary", 1)[1].split("## Details", 1)[0]
    print(summary.strip())
    print(f"\nwritten to {output} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
