"""Renders the bench results as Markdown (``bench/RESULTS.md``)."""

from __future__ import annotations

import datetime as dtm
from typing import Any

from bench.common import Measure, Row


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def count(value: int | None) -> str:
    return "—" if value is None else str(value)


def mib(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} MiB"


def measure_cell(row: Row, measure: Measure | None) -> str:
    if measure is None:
        return "—"
    if measure.wall is None and row.metric != "memory":
        return "skipped"
    if row.metric == "memory":
        if "peak_mib" not in measure.extra:
            return "skipped"
        return f"{mib(measure.extra['peak_mib'])} (+{mib(measure.extra['delta_mib'])})"
    if row.metric == "cpu":
        return f"{seconds(measure.cpu)} CPU"
    text = seconds(measure.wall)
    if measure.writes:
        text += f", {measure.writes} write cmd{'s' if measure.writes != 1 else ''}"
    elif measure.writes == 0:
        text += ", 0 writes"
    return text


def ratio_cell(row: Row) -> str:
    if row.metric == "memory":
        base = row.baseline(row.ratio_to) if row.ratio_to else None
        if base is None or "peak_mib" not in base.extra or "peak_mib" not in row.ours.extra:
            return "—"
        peak = row.ours.extra["peak_mib"] / base.extra["peak_mib"]
        delta = (
            row.ours.extra["delta_mib"] / base.extra["delta_mib"]
            if base.extra["delta_mib"] > 0
            else float("nan")
        )
        return f"{peak:.2f}x peak, {delta:.2f}x growth"
    ratio = row.ratio()
    if ratio is None:
        return "—"
    text = f"{ratio:.2f}x"
    if row.metric == "wall":
        cpu = row.ratio("cpu")
        if cpu is not None:
            text += f" (client CPU {cpu:.2f}x)"
    return text


def result_cell(row: Row) -> str:
    passed = row.passed
    failed_checks = [name for name, ok in row.checks if not ok]
    if passed is None:
        return "report"
    if passed:
        return "pass"
    text = "**FAIL**"
    if failed_checks:
        text += " (" + "; ".join(failed_checks) + ")"
    return text


def render(
    rows: list[Row],
    *,
    machine: dict[str, str],
    versions: dict[str, str],
    server: str,
    settings: Any,
    elapsed: float,
    command: str,
) -> str:
    now = dtm.datetime.now(dtm.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Benchmark results",
        "",
        f"Made by `{command}` on {now} in {elapsed / 60:.1f} minutes. Medians of up to "
        f"{settings.reps} runs (the details give each count). "
        "Round trips are counted with PyMongo command monitoring; *client CPU* is the CPU time of "
        "the benchmarking process alone (the server runs in another process).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in machine.items() if key != "executable"),
        *(f"| {key} | {value} |" for key, value in versions.items()),
        f"| server | {server} |",
        "",
        "## How to read this",
        "",
        "- *raw* is the floor: plain PyMongo doing the same I/O by hand (one unordered "
        "`bulk_write` of the same documents; one plain cursor over the collection).",
        "- The local server is SecantusDB, a MongoDB-compatible server written in Python: its "
        "time per document is far above a real `mongod`'s, so it dominates the wall times and "
        "pulls every wall-time ratio against the raw floor towards 1. *client CPU* is the cost "
        "of the client alone (this process); against a fast `mongod` it is what the ratios "
        "approach. Run with `MONGODB_URI=...` to measure a real server.",
        "- `DictPersistence` keeps everything in memory and saves nothing: it is the cost of PTB "
        "itself. `PicklePersistence` by default (`on_flush=False`) rewrites its whole file for "
        "every changed entity (O(N²)); *estimated* rows multiply one measured dump by the number "
        "of dumps instead of running it.",
        "- `mongopersistence 0.3.2` (PyPI, motor) runs with `load_on_flush=False`, so that it "
        "writes at each `update_*` call like the others; with its default (`True`) it writes "
        "nothing before shutdown. It reads each document before writing it.",
        "- Write/read cmds are MongoDB commands (round trips) per run, counted with command "
        "monitoring; a bulk of up to 100k operations is one command.",
        "",
        "## Summary",
        "",
        "| Scenario | mongo_persistence | compared with | baseline | ratio | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = row.baseline(row.ratio_to) if row.ratio_to else None
        out.append(
            f"| {row.scenario} | {measure_cell(row, row.ours)} | {row.ratio_to or '—'} | "
            f"{measure_cell(row, base)} | {ratio_cell(row)} | {row.target} | {result_cell(row)} |"
        )
    out += ["", "## Details", ""]
    for row in rows:
        if row.repeats:
            continue  # the measures of the row above it
        out += [f"### {row.scenario}", ""]
        if row.metric == "memory":
            out += [
                "| implementation | peak RSS | growth during the load | note |",
                "|---|---|---|---|",
            ]
            for measure in (row.ours, *row.baselines):
                peak = measure.extra.get("peak_mib")
                delta = measure.extra.get("delta_mib")
                out.append(f"| {measure.label} | {mib(peak)} | {mib(delta)} | {measure.note} |")
        else:
            out += [
                "| implementation | wall (median) | client CPU | write cmds | read cmds | runs "
                "| note |",
                "|---|---|---|---|---|---|---|",
            ]
            for measure in (row.ours, *row.baselines):
                if measure.wall is None:
                    out.append(f"| {measure.label} | skipped | | | | | {measure.note} |")
                    continue
                out.append(
                    f"| {measure.label} | {seconds(measure.wall)} | {seconds(measure.cpu)} | "
                    f"{count(measure.writes)} | {count(measure.reads)} | {measure.reps} | "
                    f"{measure.note} |"
                )
        checks = [f"{'✔' if ok else '✘'} {name}" for name, ok in row.checks]
        if checks or row.notes:
            out += ["", *(f"- {line}" for line in [*checks, *row.notes])]
        out.append("")
    return "\n".join(out) + "\n"
