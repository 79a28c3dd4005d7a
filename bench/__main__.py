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
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import CACHE, Measure, Row, Settings, machine, versions

HERE = Path(__file__).resolve().parent
SCENARIOS = ("CPU", "S1", "S2", "S3", "S4", "S5")


@contextmanager
def server() -> Iterator[tuple[str, str]]:
    """Yields (uri, description): MONGODB_URI, or a local in-memory SecantusDB."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        from mongo_persistence._util.uri import redact_uri

        yield uri, f"MONGODB_URI ({redact_uri(uri)})"
        return
    from scripts.local_server import LocalServer

    CACHE.mkdir(parents=True, exist_ok=True)
    # --standalone: as a one-node replica set, SecantusDB 0.7.0b3 slows down with every write
    # (its oplog), to ~10x after ~40k writes, and its in-memory store eventually fails.
    local = LocalServer(
        storage=":memory:", extra_args=("--standalone",), log_path=CACHE / "secantusd.log"
    )
    local.start()
    try:
        yield (
            local.uri,
            "local SecantusDB (`secantusd-py --storage-path :memory: --standalone`) on 127.0.0.1",
        )
    finally:
        local.stop()


async def run_all(
    uri: str,
    settings: Settings,
    *,
    only: tuple[str, ...] = SCENARIOS,
    workdir: Path,
    install: bool = True,
) -> tuple[list[Row], str]:
    """Runs the chosen scenarios; returns (rows, the server's version).

    A scenario that raises is reported as a failed row; the others still run.
    """
    from bench import scenarios

    env = scenarios.Env(uri, settings, workdir, install=install)
    if env.mp_class is None:
        print(f"note: the {scenarios.MP} columns are skipped: {env.mp_reason}", flush=True)
    await env.open()
    rows: list[Row] = []

    async def attempt(name: str, scenario: Callable[[], Awaitable[list[Row]]]) -> None:
        try:
            rows.extend(await scenario())
        except Exception as exc:
            traceback.print_exc()
            failed = Row(f"{name} did not run", Measure.skipped("-", repr(exc)), [], "runs")
            failed.checks.append((f"raised {type(exc).__name__}: {exc}", False))
            rows.append(failed)

    try:
        info = await env.raw.admin.command("buildInfo")
        version = str(info.get("version", "?"))
        if "CPU" in only:
            from bench.floor import cpu_floor

            await attempt("CPU", lambda: cpu_floor(env, settings.cpu_users))
        if "S1" in only or "S2" in only:
            for n in settings.s1_sizes:

                async def s1(n: int = n) -> list[Row]:
                    out = [await scenarios.s1_new(env, n)] if "S1" in only else []
                    dirty, idle = await scenarios.s1_dirty_and_s2_idle(env, n)
                    return out + [r for r, k in ((dirty, "S1"), (idle, "S2")) if k in only]

                await attempt(f"S1/S2 N={n}", s1)
        if "S3" in only:
            await attempt("S3", lambda: scenarios.s3_startup(env))
        if "S4" in only:
            await attempt("S4", lambda: scenarios.s4_end_to_end(env))
    finally:
        try:
            await env.close()
        except Exception as exc:
            print(f"warning: closing the bench's clients failed: {exc!r}", flush=True)
    if "S5" in only:
        # CPU only, and run with no client open: a long synchronous loop would starve the
        # clients' background monitoring.
        async def s5() -> list[Row]:
            return scenarios.s5_codec(settings)

        await attempt("S5", s5)
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
        rows,
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
