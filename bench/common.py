"""Shared pieces of the bench: settings, timing, results, data generators, machine facts."""

from __future__ import annotations

import datetime as dtm
import decimal
import gc
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.monitor import READ_COMMANDS, WRITE_COMMANDS, CommandLog

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
DATABASE = "mp_bench"
EPOCH = dtm.datetime(2024, 5, 1, 12, 0, tzinfo=dtm.timezone.utc)


# =============================================================================== settings
@dataclass
class Settings:
    """Sizes and repetitions of one bench run."""

    s1_sizes: tuple[int, ...] = (1_000, 10_000)
    cpu_users: int = 5_000
    """Users of the client-CPU scenarios against the floor (issue 10)."""
    s3_chats: int = 100_000
    s3_lazy_small: int = 1_000
    s4_updates: int = 10_000
    s4_users: int = 1_000
    s4_every: int = 1_000
    s5_iterations: int = 2_000
    reps: int = 5
    big_reps: int = 3
    """Repetitions at N >= 10k and in S4 (a run there takes many seconds on this server)."""
    slow_reps: int = 1
    """Repetitions of the slowest columns (mongopersistence at 10k; S4 lazy, refresh, others)."""
    pickle_default_max: int = 300
    """PicklePersistence(on_flush=False) rewrites the whole file per changed entity: O(N²). Above
    this N it is not run but estimated from the measured time of one dump."""
    memory: bool = True
    memory_modes: tuple[str, ...] = ("ours", "raw", "pickle", "mp")
    quick: bool = False
    progress: bool = True

    def reps_for(self, n: int) -> int:
        return self.reps if n < 10_000 else self.big_reps

    def slow_reps_for(self, n: int) -> int:
        return self.big_reps if n < 10_000 else self.slow_reps

    @classmethod
    def quick_settings(cls) -> Settings:
        """``--quick``: every scenario at small sizes, in seconds."""
        return cls(
            s1_sizes=(100,),
            cpu_users=500,
            s3_chats=500,
            s3_lazy_small=50,
            s4_updates=100,
            s4_users=10,
            s4_every=50,
            s5_iterations=100,
            reps=1,
            big_reps=1,
            slow_reps=1,
            pickle_default_max=100,
            memory=False,
            quick=True,
        )

    @classmethod
    def tiny_settings(cls) -> Settings:
        """For the smoke test: every code path, as fast as possible."""
        return cls(
            s1_sizes=(20,),
            cpu_users=20,
            s3_chats=60,
            s3_lazy_small=10,
            s4_updates=30,
            s4_users=5,
            s4_every=10,
            s5_iterations=5,
            reps=1,
            big_reps=1,
            slow_reps=1,
            pickle_default_max=10,
            memory_modes=("ours", "raw"),
            quick=True,
            progress=False,
        )


_T0 = time.perf_counter()


def say(settings: Settings, message: str) -> None:
    if settings.progress:
        print(f"[{time.perf_counter() - _T0:6.1f} s] {message}", flush=True)


# =============================================================================== measuring
@dataclass
class Sample:
    wall: float
    cpu: float
    writes: int | None = None
    reads: int | None = None
    gc_cpu: float = 0.0
    """CPU seconds spent in the garbage collector during the run (part of :attr:`cpu`)."""
    full_gcs: int = 0
    """Full (oldest generation) collections during the run."""


class _Clock:
    """Times one run: its wall time, this process's CPU, and the garbage collector's share.

    A collection runs when the allocations cross its thresholds: a full one (tens of ms with
    PTB and PyMongo imported) lands in some runs and not in others, which moves a CPU ratio by
    far more than the code measured. The CPU rows report their CPU without it as well. The
    collector is watched (``gc.callbacks``) only between the two CPU readings, and a collection
    already under way when watching starts is not counted: its share is never more than the CPU.
    """

    def __init__(self) -> None:
        self.wall = self.cpu = self.gc_cpu = 0.0
        self.full = 0
        self._wall0 = self._cpu0 = 0.0
        self._started: float | None = None

    def _watch(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
            return
        if self._started is None:
            return  # began before the run
        self.gc_cpu += time.process_time() - self._started
        self._started = None
        if info.get("generation") == 2:
            self.full += 1

    def __enter__(self) -> _Clock:
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()
        gc.callbacks.append(self._watch)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._watch)
        self.cpu = time.process_time() - self._cpu0
        self.wall = time.perf_counter() - self._wall0

    def sample(self) -> Sample:
        return Sample(self.wall, self.cpu, gc_cpu=self.gc_cpu, full_gcs=self.full)


@dataclass
class Measure:
    """The medians of several samples of one implementation in one scenario."""

    label: str
    wall: float | None
    cpu: float | None = None
    writes: int | None = None
    reads: int | None = None
    reps: int = 0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    cpu_without_gc: float | None = None
    """The median of the runs' CPU less their garbage collector's time."""
    full_gcs: tuple[int, ...] = ()
    """The full collections of each run."""

    @classmethod
    def of(cls, label: str, samples: list[Sample], note: str = "") -> Measure:
        def med(values: list[int | None]) -> int | None:
            present = [v for v in values if v is not None]
            return int(statistics.median(present)) if present else None

        return cls(
            label,
            statistics.median(s.wall for s in samples),
            statistics.median(s.cpu for s in samples),
            med([s.writes for s in samples]),
            med([s.reads for s in samples]),
            len(samples),
            note,
            cpu_without_gc=statistics.median(s.cpu - s.gc_cpu for s in samples),
            full_gcs=tuple(s.full_gcs for s in samples),
        )

    @classmethod
    def skipped(cls, label: str, reason: str) -> Measure:
        return cls(label, None, note=reason)


@dataclass
class Row:
    """One line of the summary table."""

    scenario: str
    ours: Measure
    baselines: list[Measure]
    target: str
    ratio_to: str | None = None
    """The label of the baseline the target's ratio is taken against."""
    limit: float | None = None
    metric: str = "wall"
    checks: list[tuple[str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repeats: bool = False
    """Its measures are those of the row above it (their details are shown once, there)."""

    def baseline(self, label: str) -> Measure | None:
        return next((m for m in self.baselines if m.label == label), None)

    def ratio(self, metric: str | None = None) -> float | None:
        metric = metric or self.metric
        base = self.baseline(self.ratio_to) if self.ratio_to else None
        if metric == "memory":  # the growth of the peak RSS over the process's start
            grown = self.ours.extra.get("delta_mib")
            theirs_grown = base.extra.get("delta_mib") if base else None
            return float(grown) / float(theirs_grown) if grown and theirs_grown else None
        ours = getattr(self.ours, metric)
        theirs = getattr(base, metric) if base else None
        if ours is None or not theirs:
            return None
        return float(ours) / float(theirs)

    @property
    def passed(self) -> bool | None:
        results = [ok for _, ok in self.checks]
        if self.limit is not None:
            ratio = self.ratio()
            if ratio is None:
                return None
            results.append(ratio <= self.limit)
        return all(results) if results else None


async def timed(run: Callable[[], Awaitable[Any]], log: CommandLog | None = None) -> Sample:
    """Runs ``run()`` once; wall time, this process's CPU time and the commands it sent."""
    gc.collect()
    if log is not None:
        log.clear()
    with _Clock() as clock:
        await run()
    sample = clock.sample()
    if log is not None:
        sample.writes, sample.reads = log.total(WRITE_COMMANDS), log.total(READ_COMMANDS)
    return sample


def timed_sync(run: Callable[[], Any]) -> Sample:
    """Runs ``run()`` once: :func:`timed` for a plain function."""
    gc.collect()
    with _Clock() as clock:
        run()
    return clock.sample()


# =============================================================================== data
def user_data(uid: int, rev: int = 0) -> dict[str, Any]:
    """A realistic user's data (~0.6 KB of BSON); ``rev`` changes two top-level keys."""
    return {
        "name": f"User {uid}",
        "language": "en" if uid % 3 else "it",
        "visits": uid + rev,
        "last_seen": EPOCH + dtm.timedelta(seconds=uid + rev),
        "cart": [{"sku": f"sku-{uid}-{k}", "qty": k + 1, "price": 9.99 + k} for k in range(3)],
        "settings": {"notify": True, "tz": "Europe/Rome", "theme": "dark", "digest": "weekly"},
        "history": [f"/command{k}" for k in range(10)],
        "referrer": uid // 7,
    }


def chat_data(cid: int) -> dict[str, Any]:
    """A realistic group chat's data (~0.4 KB of BSON)."""
    return {
        "title": f"Group {cid}",
        "type": "supergroup",
        "admins": [abs(cid) * 10 + k for k in range(3)],
        "settings": {"lang": "en", "welcome": True, "slowmode": 10, "antispam": "strict"},
        "stats": {"messages": abs(cid) * 3, "joins": abs(cid) % 7, "leaves": abs(cid) % 3},
        "rules": "Be nice. No spam. Stay on topic.",
        "created": EPOCH - dtm.timedelta(days=abs(cid) % 365),
    }


def json_safe(value: Any) -> Any:
    """Datetimes as ISO strings (for DictPersistence, which holds JSON)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, dtm.datetime):
        return value.isoformat()
    return value


def rich_user_data(bot: Any) -> dict[str, Any]:
    """User data as bots really hold it: nested dicts, a telegram Message, datetimes, tuples."""
    from telegram import (
        Chat,
        InlineKeyboardButton,
        InlineKeyboardMarkup,
        Message,
        MessageEntity,
        User,
    )

    alice = User(4242, "Alice", False, last_name="Liddell", username="alice", language_code="en")
    message = Message(
        message_id=1234,
        date=EPOCH,
        chat=Chat(4242, Chat.PRIVATE, first_name="Alice", username="alice"),
        from_user=alice,
        text="/order 3 pizzas for tonight please",
        entities=[MessageEntity(MessageEntity.BOT_COMMAND, 0, 6)],
        reply_markup=InlineKeyboardMarkup(
            [
                [InlineKeyboardButton("Yes", callback_data="yes")],
                [InlineKeyboardButton("No", callback_data="no")],
            ]
        ),
    )
    message.set_bot(bot)
    return {
        "profile": {"first_name": "Alice", "lang": "en", "premium": False, "joined": EPOCH},
        "last_message": message,
        "orders": [
            {
                "id": k,
                "items": [{"sku": f"pizza-{i}", "qty": i + 1, "price": 7.5 + i} for i in range(3)],
                "total": decimal.Decimal("31.50"),
                "created": EPOCH + dtm.timedelta(hours=k),
                "status": "delivered" if k % 2 else "open",
            }
            for k in range(5)
        ],
        "settings": {"notify": True, "quiet_hours": (dtm.time(22, 0), dtm.time(7, 0))},
        "visits": 42,
        "scores": [1.5, 2.25, 3.0, 4.75],
        "seen_commands": ["/start", "/help", "/order", "/cancel"],
        "session_length": dtm.timedelta(minutes=12, seconds=5),
    }


# =============================================================================== machine
def versions() -> dict[str, str]:
    out = {"Python": platform.python_version()}
    for dist in ("pymongo", "python-telegram-bot", "motor", "secantusdb"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "CPU": model,
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "executable": sys.executable,
    }
