"""The bench code itself must not rot: every scenario at tiny sizes (no timing is asserted)."""

from __future__ import annotations

import gc
from pathlib import Path

from bench.__main__ import SCENARIOS, run_all
from bench.common import Settings, machine, versions
from bench.report import render


async def test_every_bench_scenario_runs_at_tiny_sizes(mongodb_uri: str, tmp_path: Path) -> None:
    settings = Settings.tiny_settings()
    rows, server_version = await run_all(
        mongodb_uri, settings, only=SCENARIOS, workdir=tmp_path, install=False
    )
    assert server_version
    titles = [row.scenario for row in rows]
    for prefix in (
        "CPU 20 new users",
        "CPU 20 users, 2 of 6 keys changed",
        "CPU idle run",
        "S1 flush of 20 new",
        "S1 flush of 20 dirty",
        "S2 idle",
        "S3 eager",
        "S3 lazy",
        "S3 memory",
        "S4 end to end",
        "S5 codec",
    ):
        assert any(title.startswith(prefix) for title in titles), (prefix, titles)
    for row in rows:
        assert row.ours.label
        # The functional checks (write commands counted, data stored and correct) hold at any
        # size; the time ratios are only reported.
        failed = [name for name, ok in row.checks if not ok]
        assert not failed, (row.scenario, failed)
    for row in rows:
        if row.metric == "cpu" and row.scenario.startswith("CPU"):
            # a full collection lands in some runs and not others: its time is shown apart
            assert any("garbage collector's time" in note for note in row.notes), row.notes
            assert row.ours.cpu_without_gc is not None
            assert 0 <= row.ours.cpu_without_gc <= (row.ours.cpu or 0)
    memory = next(row for row in rows if row.metric == "memory")
    assert "peak_mib" in memory.ours.extra, memory.ours.note

    text = render(
        rows,
        machine=machine(),
        versions=versions(),
        server=f"test server {server_version}",
        settings=settings,
        elapsed=1.0,
        command="pytest",
    )
    assert "## Summary" in text
    assert text.count("\n| S") + text.count("\n| CPU") >= len(rows)


def test_the_bench_clock_counts_the_collections_of_the_run_only() -> None:
    from bench.common import _Clock

    with _Clock() as clock:
        # a collection under way when the clock started (its start unseen) is not counted
        clock._watch("stop", {"generation": 2})
        assert (clock.gc_cpu, clock.full) == (0.0, 0)
        gc.collect()
    sample = clock.sample()
    assert sample.full_gcs == 1
    assert 0 < sample.gc_cpu <= sample.cpu
    assert clock._watch not in gc.callbacks
