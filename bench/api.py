"""The owner's REST API at scale: N realistic calls in the database, then the list, its filters,
search, stats and one call's detail timed over real HTTP as a tenant owner, each beside a floor:
the same query straight through the database driver in the same run.

    .venv/bin/python bench/api.py --calls 1000000 --db postgresql \
        [--tenants 5] [--days 180] [--requests 60] [--json bench/results/x.json]

Two processes, loopback only: `receptionist serve` (no post-call worker) and this one (the
seeding, the HTTP client, the floors). PostgreSQL is a throw-away server started like the tests'
(tests/pg.py), given a production-like memory setting; SQLite is a file in a temp folder.

Seeding: calls spread over --days up to now (busier in Indian business hours) across --tenants
tenants, the first of which (the one measured) holds 40 %. Transcripts of 4-10 turns in English,
Hindi or Hinglish, summaries, call types, statuses, repeat callers; token usage for 60 % of calls
and an owner message for 30 %. Bulk loads (PostgreSQL COPY through asyncpg, SQLite executemany
in large transactions) with the secondary indexes, FTS triggers and GIN index dropped first and
made again afterwards from their own definitions, as one would load a big table; then ANALYZE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    REPO_ROOT,
    free_port,
    git_commit,
    machine_info,
    percentile,
    serve_argv,
    write_json,
)
from bridge_load import Proc, _tail, _wait_healthz, log
from receptionist.store.api_keys import create_key
from receptionist.store.db import Database
from receptionist.store.search import (
    caller_key,
    caller_prefix,
    fts5_query,
    pg_tsquery,
    query_words,
    response_times,
    search_document,
    words,
)
from receptionist.web.call_list import decode_cursor
from receptionist.web.figures import BUCKET_S, LATENCY_SAMPLE_CALLS

TZ = ZoneInfo("Asia/Kolkata")
PAGE = 50  # the API's default page size
SAMPLE = 500  # owner's calls kept aside for detail requests and caller filters

# --- what the calls say -------------------------------------------------------------------------

ITEMS = ["cake", "pastry", "cookies", "bread", "brownie", "cupcake", "croissant", "muffin",
         "donut", "cheesecake", "baguette", "tart", "macarons", "sourdough",
         "pizza base"]  # fmt: skip
ITEMS_HI = ["केक", "पेस्ट्री", "ब्रेड", "बिस्किट", "मिठाई", "लड्डू", "समोसा", "रसगुल्ला", "खीर"]
AREAS = ["Koramangala", "Indiranagar", "Jayanagar", "Whitefield", "HSR Layout", "Malleshwaram",
         "BTM Layout", "Hebbal", "Yelahanka", "Banashankari", "Marathahalli",
         "Rajajinagar"]  # fmt: skip
FIRST = ["Anita", "Ravi", "Priya", "Arjun", "Meera", "Suresh", "Kavya", "Rahul", "Deepa",
         "Vikram", "Lakshmi", "Imran", "Fatima", "Joseph", "Neha", "Karthik", "Pooja", "Sanjay",
         "Divya", "Manoj", "Asha", "Rohit", "Sneha", "Ganesh", "Farhan", "Nisha", "Aditya",
         "Shalini", "Venkat", "Ayesha", "Harish", "Ritu", "Naveen", "Swati", "Pradeep", "Zoya",
         "Mohan", "Geeta", "Tarun", "Bhavana"]  # fmt: skip
LAST = ["Sharma", "Iyer", "Reddy", "Khan", "Nair", "Gowda", "Patel", "Menon", "Rao", "Das",
        "Singh", "Fernandes", "Pillai", "Hegde", "Joshi", "Kulkarni", "Shetty", "Verma",
        "Chatterjee", "Naidu"]  # fmt: skip
NAMES_HI = ["अनीता", "रवि", "प्रिया", "अर्जुन", "मीरा", "सुरेश", "राहुल", "नेहा", "पूजा", "संजय"]
DAYS = ["today", "tomorrow", "Saturday", "Sunday", "Friday evening", "next Monday"]

EN_CALLER = [
    "Hi, do you have {item} today?",
    "I want to order {n} kg {item} for {day}.",
    "Can you deliver to {area}?",
    "My name is {name}.",
    "What time do you close today?",
    "Is the {item} eggless?",
    "I would like to book a custom {item} for a birthday on {day}.",
    "The {item} I got yesterday was stale, I want a refund.",
    "How much does the {item} cost?",
    "Please call me back on this number.",
]
EN_AGENT = [
    "Hello, thank you for calling! How can I help you?",
    "Yes, we have fresh {item} today.",
    "Sure, I have noted {n} kg {item} for {day}.",
    "We deliver to {area} within two hours.",
    "We are open until nine pm.",
    "Yes, the {item} is eggless.",
    "I am sorry about that, the owner will call you back today.",
    "It costs four hundred rupees per kg.",
]
HI_CALLER = [
    "नमस्ते, क्या आज {item_hi} मिलेगा?",
    "मुझे {n} किलो {item_hi} चाहिए।",
    "क्या आप {area} में डिलीवरी करते हैं?",
    "मेरा नाम {name_hi} है।",
    "आप कितने बजे तक खुले हैं?",
    "कल वाली {item_hi} ठीक नहीं थी, शिकायत करनी है।",
]
HI_AGENT = [
    "नमस्ते, आपका स्वागत है! मैं आपकी क्या मदद कर सकती हूँ?",
    "जी हाँ, {item_hi} उपलब्ध है।",
    "ठीक है, मैंने आपका ऑर्डर नोट कर लिया है।",
    "हम {area} में दो घंटे में डिलीवरी करते हैं।",
    "हम रात नौ बजे तक खुले हैं।",
]
MIX_CALLER = [
    "Mujhe {n} kg {item} chahiye, {day} tak deliver ho jayega?",
    "Bhaiya, {area} mein delivery hai kya?",
    "Mera naam {name} hai, order confirm kar dijiye.",
    "{item} ka price kya hai?",
]
MIX_AGENT = [
    "Haan ji, {area} mein delivery hai.",
    "Thik hai, {n} kg {item} note kar liya.",
    "Price chaar sau rupaye per kg hai.",
]
CALL_TYPES = [("order", 40), ("enquiry", 30), ("booking", 12), ("complaint", 6),
              ("other", 7), (None, 5)]  # fmt: skip
SUMMARIES = {
    "order": "{name} ordered {n} kg {item} for {day}, delivery to {area}.",
    "enquiry": "{name} asked about {item} availability and prices.",
    "booking": "{name} booked a custom {item} for {day}.",
    "complaint": "{name} complained that the {item} was stale; wants a call back.",
    "other": "{name} asked for the owner's number.",
    None: "No conversation: the caller did not speak.",
}
# status, its weight, end reason
STATUSES = [("completed", 920, "caller_hangup"), ("failed", 40, "engine_error"),
            ("rejected", 30, "unknown_tenant"), ("in_progress", 10, None)]  # fmt: skip


@functools.lru_cache(maxsize=500_000)
def _words(text: str | None) -> tuple[str, ...]:
    return tuple(words(text))


def fast_document(transcript: list[dict[str, Any]], summary: str | None, ct: str | None) -> str:
    """search_document's result, with each line's words remembered (lines repeat a lot):
    distinct words of call type, summary, then turns, in that order, as search_document does.
    Checked against search_document on the first rows of every run."""
    seen: dict[str, None] = {}
    for part in (ct, summary, *(t["text"] for t in transcript)):
        for w in _words(part):
            seen.setdefault(w, None)
    return " ".join(seen)


@dataclass
class Seeded:
    calls: int
    owner_calls: int
    usage_rows: int
    notification_rows: int
    sample_sids: list[str]
    sample_callers: list[str]


class Generator:
    """Deterministic calls (seeded random), one dict per call plus its usage/message rows."""

    def __init__(self, n: int, tenants: list[str], days: int, now: datetime, seed: int) -> None:
        self.n, self.tenants, self.days, self.now = n, tenants, days, now
        self.rng = random.Random(seed)
        owner_share = 0.4 if len(tenants) > 1 else 1.0
        rest = (1 - owner_share) / max(1, len(tenants) - 1)
        self.weights = [owner_share] + [rest] * (len(tenants) - 1)
        # each tenant's regular callers: a few thousand numbers, some calling often
        self.callers = {
            t: [f"+919{self.rng.randrange(10**8, 10**9)}" for _ in range(5000)] for t in tenants
        }
        self.statuses = [s for s, w, _ in STATUSES for _ in range(w)]
        self.reasons = {s: r for s, _, r in STATUSES}
        self.types = [t for t, w in CALL_TYPES for _ in range(w)]
        # hour-of-day weights in IST: a shop's day
        self.hours = [h for h, w in enumerate(
            [0, 0, 0, 0, 0, 0, 1, 2, 4, 7, 9, 10, 9, 8, 8, 9, 10, 11, 12, 11, 8, 5, 2, 1]
        ) for _ in range(w)]  # fmt: skip

    def _when(self) -> datetime:
        day = self.now.astimezone(TZ).date() - timedelta(days=self.rng.randrange(self.days))
        local = datetime(day.year, day.month, day.day, self.rng.choice(self.hours),
                         self.rng.randrange(60), self.rng.randrange(60),
                         self.rng.randrange(10**6), tzinfo=TZ)  # fmt: skip
        return min(local.astimezone(UTC), self.now - timedelta(minutes=1))

    def _fill(self) -> dict[str, Any]:
        r = self.rng
        return {
            "item": r.choice(ITEMS),
            "item_hi": r.choice(ITEMS_HI),
            "area": r.choice(AREAS),
            "name": f"{r.choice(FIRST)} {r.choice(LAST)}",
            "name_hi": r.choice(NAMES_HI),
            "n": r.choice([1, 2, 3, 5]),
            "day": r.choice(DAYS),
        }

    def _transcript(self, fill: dict[str, Any]) -> list[dict[str, Any]]:
        r = self.rng
        lang = r.random()
        if lang < 0.55:
            caller, agent = EN_CALLER, EN_AGENT
        elif lang < 0.8:
            caller, agent = HI_CALLER, HI_AGENT
        else:
            caller, agent = MIX_CALLER + EN_CALLER[:3], MIX_AGENT + EN_AGENT[:2]
        turns, t = [], 0
        for i in range(r.randrange(4, 11)):
            speaker, bank = ("agent", agent) if i % 2 == 0 else ("caller", caller)
            text = r.choice(bank).format(**fill)
            if speaker == "agent" and i:
                t += r.randrange(350, 2200)  # the agent's response time
            length = 600 + 60 * len(text)
            turns.append({"speaker": speaker, "text": text, "start_ms": t, "end_ms": t + length})
            t += length + (r.randrange(200, 900) if speaker == "agent" else 0)
        return turns

    def rows(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]]:
        r = self.rng
        # rows are written as calls end, so the table is in time order (as the indexes see it)
        times = sorted(self._when() for _ in range(self.n))
        for i in range(self.n):
            tenant = r.choices(self.tenants, self.weights)[0]
            status = r.choice(self.statuses)
            started = None if r.random() < 0.0005 else times[i]  # a few with no start
            fill = self._fill()
            heard = status == "completed" and r.random() < 0.96
            transcript = self._transcript(fill) if heard or status == "failed" else []
            ct = r.choice(self.types) if status == "completed" else None
            summary = SUMMARIES[ct].format(**fill) if status == "completed" else None
            duration = r.randrange(15_000, 300_000) if status != "rejected" else 0
            number = r.choice(self.callers[tenant])
            sid = f"CAbench{i:08d}"
            call = {
                "session_id": str(uuid.UUID(int=r.getrandbits(128))),
                "call_sid": sid,
                "tenant": tenant,
                "from_number": number,
                "to_number": "+918047000000",
                "direction": "inbound",
                "engine": "gemini-live",
                "model": "gemini-live-2.5-flash",
                "status": status,
                "end_reason": self.reasons[status],
                "error": "engine closed the session" if status == "failed" else None,
                "transcript": transcript,
                "call_type": ct,
                "summary": summary,
                "critical_call_details": {"name": fill["name"], "items": [fill["item"]]}
                if ct in ("order", "booking")
                else None,
                "stats": {"frames_in": duration // 20, "response_ms": response_times(transcript)},
                "events": [],
                "started_at": started,
                "answered_at": started + timedelta(milliseconds=900) if heard and started else None,
                "ended_at": started + timedelta(milliseconds=duration) if started else None,
                "duration_ms": duration if started else None,
                "stage": "done" if status != "in_progress" else "live",
                "search_text": fast_document(transcript, summary, ct),
                "caller_key": caller_key(number),
            }
            if i < 2000:  # the shortcut must agree with the real thing
                assert call["search_text"] == search_document(transcript, summary, ct)
            usage = []
            if r.random() < 0.6 and status == "completed":
                tin, tout = r.randrange(2000, 40000), r.randrange(1000, 20000)
                cost = Decimal(tin * 3 + tout * 12) / Decimal(10**6)
                usage.append({"call_sid": sid, "tenant": tenant, "model_name": call["model"],
                              "purpose": "live", "input_tokens": tin, "output_tokens": tout,
                              "total_tokens": tin + tout, "total_cost": cost.quantize(
                                  Decimal("0.000001")), "currency": "USD"})  # fmt: skip
            message = None
            if r.random() < 0.3 and ct is not None:
                message = {"call_sid": sid, "tenant": tenant, "recipient": "+919800000001",
                           "recipient_type": "owner", "template_name": "owner_alert",
                           "status": r.choice(["delivered", "read", "sent", "failed"]),
                           "idempotency_key": f"{sid}:owner:owner_alert",
                           "urgent": ct == "complaint", "provider": "msg91",
                           "details": {"text": summary}, "attempts": 1}  # fmt: skip
            yield call, usage, message


CALL_COLUMNS = [
    "session_id", "call_sid", "tenant", "from_number", "to_number", "direction", "engine", "model",
    "status", "end_reason", "error", "transcript", "call_type", "summary", "critical_call_details",
    "stats", "events", "started_at", "answered_at", "ended_at", "duration_ms", "stage",
    "search_text", "caller_key", "custom_parameters", "attempts", "created_at", "updated_at",
]  # fmt: skip
JSON_COLUMNS = {"transcript", "critical_call_details", "stats", "events", "custom_parameters"}
TIME_COLUMNS = {"started_at", "answered_at", "ended_at", "created_at", "updated_at", "sent_at"}
USAGE_COLUMNS = ["call_sid", "tenant", "model_name", "purpose", "input_tokens", "output_tokens",
                 "total_tokens", "total_cost", "currency", "created_at"]  # fmt: skip
NOTE_COLUMNS = ["call_sid", "tenant", "recipient", "recipient_type", "template_name", "status",
                "idempotency_key", "urgent", "provider", "details", "attempts", "created_at",
                "updated_at", "sent_at"]  # fmt: skip


def _complete(call: dict[str, Any], now: datetime) -> dict[str, Any]:
    stamp = call["ended_at"] or now
    return {**call, "custom_parameters": {}, "attempts": 0, "created_at": stamp,
            "updated_at": stamp}  # fmt: skip


def _sqlite_value(column: str, value: Any) -> Any:
    """As SQLAlchemy stores it on SQLite: JSON text, naive UTC ISO text with microseconds."""
    if value is None:
        return None
    if column in JSON_COLUMNS or column == "details":
        return json.dumps(value, ensure_ascii=False)
    if column in TIME_COLUMNS:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _pg_value(column: str, value: Any) -> Any:
    if value is not None and (column in JSON_COLUMNS or column == "details"):
        return json.dumps(value, ensure_ascii=False)
    return value


def _batches(gen: Generator, now: datetime, size: int, seeded: Seeded) -> Iterator[
    tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]
]:  # fmt: skip
    calls: list[dict[str, Any]] = []
    usage: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    rng = random.Random(7)
    for call, u, note in gen.rows():
        call = _complete(call, now)
        calls.append(call)
        usage += [{**x, "created_at": call["created_at"]} for x in u]
        if note is not None:
            stamp = call["created_at"]
            notes.append({**note, "created_at": stamp, "updated_at": stamp, "sent_at": stamp})
        seeded.calls += 1
        if call["tenant"] == gen.tenants[0]:
            seeded.owner_calls += 1
            # a uniform sample of the owner's calls (reservoir), for details and callers
            if len(seeded.sample_sids) < SAMPLE:
                seeded.sample_sids.append(call["call_sid"])
                seeded.sample_callers.append(call["from_number"])
            elif (k := rng.randrange(seeded.owner_calls)) < SAMPLE:
                seeded.sample_sids[k] = call["call_sid"]
                seeded.sample_callers[k] = call["from_number"]
        if len(calls) >= size:
            yield calls, usage, notes
            calls, usage, notes = [], [], []
    if calls:
        yield calls, usage, notes


# --- loading ------------------------------------------------------------------------------------


async def seed_postgres(url: str, gen: Generator, now: datetime) -> tuple[Seeded, dict[str, Any]]:
    import asyncpg

    seeded = Seeded(0, 0, 0, 0, [], [])
    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))
    timings: dict[str, Any] = {}
    try:
        indexes = await conn.fetch(
            """SELECT i.relname AS name, pg_get_indexdef(i.oid) AS ddl FROM pg_index x
               JOIN pg_class i ON i.oid = x.indexrelid
               WHERE x.indrelid = 'call_details'::regclass AND NOT x.indisunique"""
        )
        for ix in indexes:
            await conn.execute(f'DROP INDEX "{ix["name"]}"')
        t0 = time.perf_counter()
        for calls, usage, notes in _batches(gen, now, 20_000, seeded):
            await conn.copy_records_to_table(
                "call_details",
                records=[tuple(_pg_value(k, c[k]) for k in CALL_COLUMNS) for c in calls],
                columns=CALL_COLUMNS,
            )
            if usage:
                await conn.copy_records_to_table(
                    "ai_token_usage",
                    records=[tuple(u[k] for k in USAGE_COLUMNS) for u in usage],
                    columns=USAGE_COLUMNS,
                )
            if notes:
                await conn.copy_records_to_table(
                    "notifications",
                    records=[tuple(_pg_value(k, n[k]) for k in NOTE_COLUMNS) for n in notes],
                    columns=NOTE_COLUMNS,
                )
            seeded.usage_rows += len(usage)
            seeded.notification_rows += len(notes)
            if seeded.calls % 200_000 < 20_000:
                log(f"  {seeded.calls} calls copied ({time.perf_counter() - t0:.0f} s)")
        timings["load_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for ix in indexes:
            await conn.execute(ix["ddl"])
        timings["index_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        timings["analyze_s"] = round(time.perf_counter() - t0, 1)
        timings["db_size_mb"] = round(
            await conn.fetchval("SELECT pg_database_size(current_database())") / 2**20
        )
    finally:
        await conn.close()
    return seeded, timings


def seed_sqlite(path: Path, gen: Generator, now: datetime) -> tuple[Seeded, dict[str, Any]]:
    seeded = Seeded(0, 0, 0, 0, [], [])
    timings: dict[str, Any] = {}
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        ddl = conn.execute(
            """SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'call_details'
               AND type IN ('index', 'trigger') AND sql IS NOT NULL"""
        ).fetchall()
        for kind, name, _ in ddl:
            conn.execute(f'DROP {kind.upper()} "{name}"')
        t0 = time.perf_counter()

        def insert(table: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
            marks = ", ".join("?" for _ in columns)
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                [tuple(_sqlite_value(k, r[k]) for k in columns) for r in rows],
            )

        for calls, usage, notes in _batches(gen, now, 50_000, seeded):
            conn.execute("BEGIN")
            insert("call_details", CALL_COLUMNS, calls)
            if usage:
                insert("ai_token_usage", USAGE_COLUMNS, usage)
            if notes:
                insert("notifications", NOTE_COLUMNS, notes)
            conn.execute("COMMIT")
            seeded.usage_rows += len(usage)
            seeded.notification_rows += len(notes)
            if seeded.calls % 200_000 < 50_000:
                log(f"  {seeded.calls} calls inserted ({time.perf_counter() - t0:.0f} s)")
        timings["load_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        for _, _, sql in ddl:
            conn.execute(sql)
        conn.execute("INSERT INTO call_search(call_search) VALUES ('rebuild')")
        conn.execute("COMMIT")
        timings["index_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        conn.execute("ANALYZE")
        timings["analyze_s"] = round(time.perf_counter() - t0, 1)
    finally:
        conn.close()
    timings["db_size_mb"] = round(
        sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    )
    return seeded, timings


# --- the requests -------------------------------------------------------------------------------


@dataclass
class Spec:
    """One request: what the API is asked, and what its floor runs."""

    kind: str
    params: dict[str, str]
    path: str = "/api/v1/calls"


def specs(kind: str, n: int, seeded: Seeded, today: date) -> list[Spec]:
    out: list[Spec] = []
    if kind == "list":  # first pages and the pages after them
        out = [Spec("list", {}) for _ in range(n)]
    elif kind == "filter":
        number = seeded.sample_callers[0] if seeded.sample_callers else "+919800000000"
        week = {"from": str(today - timedelta(days=6)), "to": str(today)}
        variants = [{"call_type": "complaint"}, {"status": "failed"},
                    {"caller": number[-10:]}, week]  # fmt: skip
        out = [Spec("filter", variants[i % len(variants)]) for i in range(n)]
    elif kind == "search":
        terms = ["cake", "koramangala", "anita sharma", "केक", "डिलीवरी", "stale refund",
                 "chahiye", "brown", "zoya fernandes", "eggless birthday"]  # fmt: skip
        out = [Spec("search", {"q": terms[i % len(terms)]}) for i in range(n)]
    elif kind == "stats":
        ranges = [{}, {"from": str(today - timedelta(days=89)), "to": str(today)}]
        out = [Spec("stats", ranges[i % 2], "/api/v1/stats") for i in range(n)]
    elif kind == "detail":
        sids = seeded.sample_sids or ["CAbench00000000"]
        out = [Spec("detail", {}, f"/api/v1/calls/{sids[i % len(sids)]}") for i in range(n)]
    return out


LIST_SQL = ("id, call_sid, tenant, from_number, status, end_reason, call_type, summary, stage, "
            "started_at, ended_at, duration_ms, {turns} AS turns")  # fmt: skip
TURNS = {
    "postgresql": "CASE WHEN jsonb_typeof(transcript) = 'array' "
    "THEN jsonb_array_length(transcript) END",
    "sqlite": "json_array_length(transcript)",
}


class Floor:
    """The API's queries written out by hand and run through the driver (asyncpg, sqlite3)."""

    def __init__(self, dialect: str, tenant: str) -> None:
        self.dialect, self.tenant = dialect, tenant
        self.pg: Any = None
        self.lite: sqlite3.Connection | None = None

    def _p(self, i: int) -> str:
        return f"${i}" if self.dialect == "postgresql" else f"?{i}"

    def _t(self, value: datetime) -> Any:
        return value if self.dialect == "postgresql" else _sqlite_value("started_at", value)

    def statements(
        self, spec: Spec, cursor: tuple[datetime | None, int] | None
    ) -> list[tuple[str, list[Any]]]:
        if spec.kind == "stats":
            return self._stats(spec)
        if spec.kind == "detail":
            sid = spec.path.rsplit("/", 1)[1]
            p = self._p(1)
            return [
                (f"SELECT * FROM call_details WHERE tenant = {self._p(2)} AND call_sid = {p}",
                 [sid, self.tenant]),
                (f"SELECT * FROM ai_token_usage WHERE tenant = {self._p(2)} AND call_sid = {p} "
                 "ORDER BY id", [sid, self.tenant]),
                (f"SELECT * FROM notifications WHERE tenant = {self._p(2)} AND call_sid = {p} "
                 "ORDER BY id", [sid, self.tenant]),
                (f"SELECT * FROM exotel_call_details WHERE tenant = {self._p(2)} "
                 f"AND call_sid = {p}", [sid, self.tenant]),
            ]  # fmt: skip
        where, args = ["tenant = " + self._p(1), "started_at IS NOT NULL"], [self.tenant]

        def arg(value: Any) -> str:
            args.append(value)
            return self._p(len(args))

        prm = spec.params
        if "call_type" in prm:
            where.append("call_type = " + arg(prm["call_type"]))
        if "status" in prm:
            where.append("status = " + arg(prm["status"]))
        if "caller" in prm:
            low, high = caller_prefix(prm["caller"])
            where.append(f"caller_key >= {arg(low)} AND caller_key < {arg(high)}")
        if "from" in prm:
            lo = datetime.combine(date.fromisoformat(prm["from"]), datetime.min.time(), TZ)
            hi = datetime.combine(
                date.fromisoformat(prm["to"]) + timedelta(days=1), datetime.min.time(), TZ
            )
            where.append(f"started_at >= {arg(self._t(lo))} AND started_at < {arg(self._t(hi))}")
        if "q" in prm:
            terms = query_words(prm["q"])
            if self.dialect == "postgresql":
                literal = pg_tsquery(terms).replace("'", "''")  # inline, as the API does
                where.append(
                    "array_to_tsvector(string_to_array(search_text, ' ')) @@ "
                    f"CAST('{literal}' AS tsquery)"
                )
            else:
                where.append(
                    "id + 0 IN (SELECT rowid FROM call_search WHERE call_search MATCH "
                    f"{arg(fts5_query(terms))})"
                )
        if cursor is not None and cursor[0] is not None:
            where.append(f"(started_at, id) < ({arg(self._t(cursor[0]))}, {arg(cursor[1])})")
        columns = LIST_SQL.format(turns=TURNS[self.dialect])
        sql = (f"SELECT {columns} FROM call_details WHERE {' AND '.join(where)} "
               f"ORDER BY started_at DESC, id DESC LIMIT {PAGE + 1}")  # fmt: skip
        return [(sql, args)]

    def _stats(self, spec: Spec) -> list[tuple[str, list[Any]]]:
        today = datetime.now(TZ).date()
        first = date.fromisoformat(spec.params["from"]) if spec.params else today - timedelta(29)
        last = date.fromisoformat(spec.params["to"]) if spec.params else today
        lo = datetime.combine(first, datetime.min.time(), TZ)
        hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), TZ)
        if self.dialect == "postgresql":
            bucket = f"CAST(floor(date_part('epoch', started_at) / {BUCKET_S}) AS BIGINT)"
            cbucket = bucket.replace("started_at", "c.started_at")
            rng, args = "started_at >= $2 AND started_at < $3", [self.tenant, lo, hi]
        else:
            bucket = f"CAST(strftime('%s', started_at) AS INTEGER) / {BUCKET_S}"
            cbucket = bucket.replace("started_at", "c.started_at")
            rng, args = (
                "started_at >= ?2 AND started_at < ?3",
                [self.tenant, self._t(lo), self._t(hi)],
            )
        p1 = self._p(1)
        stats_json = "stats -> 'response_ms'" if self.dialect == "postgresql" else (
            "json_extract(stats, '$.response_ms')")  # fmt: skip
        return [
            (f"SELECT {bucket} AS b, status, answered_at IS NOT NULL AS heard, count(*), "
             f"count(duration_ms), coalesce(sum(duration_ms), 0) FROM call_details "
             f"WHERE tenant = {p1} AND {rng} GROUP BY b, status, heard", args),
            (f"SELECT call_type, count(*), count(duration_ms), coalesce(sum(duration_ms), 0) "
             f"FROM call_details WHERE tenant = {p1} AND {rng} GROUP BY call_type", args),
            (f"SELECT {cbucket} AS b, sum(u.total_cost) FROM ai_token_usage u "
             f"JOIN call_details c ON c.call_sid = u.call_sid WHERE u.tenant = {p1} "
             f"AND c.tenant = {p1} AND u.created_at >= {self._p(4)} "
             f"AND {rng.replace('started_at', 'c.started_at')} AND u.total_cost IS NOT NULL "
             f"GROUP BY b", [*args, self._t(lo - timedelta(days=1))]),
            (f"SELECT {stats_json} FROM call_details WHERE tenant = {p1} AND {rng} "
             f"ORDER BY started_at DESC, id DESC LIMIT {LATENCY_SAMPLE_CALLS}", args),
        ]  # fmt: skip

    async def run(self, spec: Spec, cursor: tuple[datetime | None, int] | None) -> float:
        t0 = time.perf_counter()
        for sql, args in self.statements(spec, cursor):
            if self.pg is not None:
                await self.pg.fetch(sql, *args)
            else:
                assert self.lite is not None
                self.lite.execute(sql, args).fetchall()
        return (time.perf_counter() - t0) * 1000


async def plans(floor: Floor, kinds: dict[str, list[Spec]]) -> dict[str, list[str]]:
    """EXPLAIN of each kind's first statements (PostgreSQL with ANALYZE and BUFFERS)."""
    out: dict[str, list[str]] = {}
    for kind, sp in kinds.items():
        seen: set[str] = set()
        for spec in sp[:10]:
            for sql, args in floor.statements(spec, None)[:3]:
                label = f"{kind} {json.dumps(spec.params, ensure_ascii=False)} {sql[:60]}"
                if label in seen:
                    continue
                seen.add(label)
                if floor.pg is not None:
                    rows = await floor.pg.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
                    plan = [r[0] for r in rows]
                else:
                    assert floor.lite is not None
                    rows = floor.lite.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
                    plan = [str(r[-1]) for r in rows]
                out[label] = plan
    return out


async def measure(
    url: str, key: str, floor: Floor, kinds: dict[str, list[Spec]], warmup: int
) -> tuple[dict[str, Any], dict[str, int]]:
    import httpx

    results: dict[str, Any] = {}
    counts: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, trust_env=False) as c:
        for kind, sp in kinds.items():
            api_ms: list[float] = []
            floor_ms: list[float] = []
            cursor: str | None = None
            depth = 0
            items = 0
            for i, spec in enumerate(sp[:warmup] + sp):
                params = dict(spec.params)
                position = None
                if kind == "list" and cursor and depth < 20:  # walk on, then start again
                    params["cursor"] = cursor
                    position = decode_cursor(cursor)
                    depth += 1
                else:
                    depth = 0
                t0 = time.perf_counter()
                got = await c.get(spec.path, params=params)
                elapsed = (time.perf_counter() - t0) * 1000
                if got.status_code != 200:
                    raise RuntimeError(f"{spec.path} {params}: {got.status_code} {got.text[:300]}")
                body = got.json()
                if kind == "list":
                    cursor = body["next_cursor"]
                items += len(body.get("items", [])) if isinstance(body, dict) else 0
                f_ms = await floor.run(spec, position)
                if i >= warmup:
                    api_ms.append(elapsed)
                    floor_ms.append(f_ms)
            counts[kind] = items
            for name, values in (("ms", api_ms), ("floor_ms", floor_ms)):
                results[f"{kind}_{name}_p50"] = _r(percentile(values, 50))
                results[f"{kind}_{name}_p95"] = _r(percentile(values, 95))
            log(f"  {kind}: p50 {results[f'{kind}_ms_p50']} ms, p95 {results[f'{kind}_ms_p95']} "
                f"ms (floor p50 {results[f'{kind}_floor_ms_p50']} ms)")  # fmt: skip
    return results, counts


def _r(x: float | None) -> float | None:
    return round(x, 2) if x is not None else None


# --- the run ------------------------------------------------------------------------------------


def tenant_folders(root: Path, names: list[str]) -> Path:
    """Copies of the example bakery under the bench's tenant ids (the folder name is the id)."""
    for name in names:
        shutil.copytree(REPO_ROOT / "tenants" / "bakery", root / name,
                        ignore=shutil.ignore_patterns("README.md"))  # fmt: skip
    return root


def start_postgres() -> Any:
    from tests.pg import ThrowawayPostgres

    server = ThrowawayPostgres().start()
    # The test server runs with 32 MB of shared buffers; a real one is given a share of RAM.
    options = " ".join([
        f"-p {server.port}", f"-c listen_addresses={server.host}",
        f"-c unix_socket_directories={server.socket_dir}", "-c fsync=off",
        "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=200",
        "-c shared_buffers=1GB", "-c effective_cache_size=4GB", "-c work_mem=16MB",
        "-c random_page_cost=1.1", "-c max_wal_size=4GB",
    ])  # fmt: skip
    log_file = str(server.log_file)  # pg_ctl must not hand the server our pipes
    server._run(
        "pg_ctl", "-D", str(server.data_dir), "-l", log_file, "-o", options, "-w", "restart"
    )
    return server


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    server_proc: Proc | None = None
    pg: Any = None
    db: Database | None = None
    floor: Floor | None = None
    names = [f"shop{i}" for i in range(args.tenants)]
    now = datetime.now(UTC)
    try:
        if args.db == "postgresql":
            pg = start_postgres()
            url = pg.url
        else:
            url = f"sqlite:///{tmp / 'bench.db'}"
        log(f"database {args.db}: {url}")
        db = Database(url)
        await db.upgrade()
        key = (await create_key(db, tenant=names[0], name="bench owner"))[1]
        await db.dispose()
        db = None

        gen = Generator(args.calls, names, args.days, now, args.seed)
        log(f"seeding {args.calls} calls over {args.days} days, {args.tenants} tenants")
        t0 = time.perf_counter()
        if args.db == "postgresql":
            seeded, timings = await seed_postgres(url, gen, now)
        else:
            seeded, timings = seed_sqlite(tmp / "bench.db", gen, now)
        timings["seed_total_s"] = round(time.perf_counter() - t0, 1)
        log(f"seeded in {timings['seed_total_s']} s: {timings}")

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "RECEPTIONIST_"))}
        env.update(
            DATABASE_URL=url,
            GEMINI_API_KEY="bench-unused",
            TENANTS_DIR=str(tenant_folders(tmp / "tenants", names)),
            SPOOL_DIR=str(tmp / "spool"),
            LOG_LEVEL="WARNING",
            RUN_WORKER="false",
            WORKERS="1",
            HOST="127.0.0.1",
            PORT=str(port),
        )
        argv = serve_argv(port)
        server_proc = Proc("server", argv, env, tmp / "server.log")
        _wait_healthz(port, server_proc, 120)
        log(f"server pid {server_proc.pid} on http://127.0.0.1:{port}")

        floor = Floor(args.db, names[0])
        if args.db == "postgresql":
            import asyncpg

            floor.pg = await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))
        else:
            floor.lite = sqlite3.connect(tmp / "bench.db")
        today = now.astimezone(TZ).date()
        kinds = {k: specs(k, args.requests, seeded, today)
                 for k in ("list", "filter", "search", "stats", "detail")}  # fmt: skip
        figures, counts = await measure(f"http://127.0.0.1:{port}", key, floor, kinds, 3)
        explained = await plans(floor, kinds)
        result = {
            "bench": "api",
            "date": now.isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "machine": machine_info(),
            "db": args.db,
            "calls": seeded.calls,
            "tenants": args.tenants,
            "owner_tenant_calls": seeded.owner_calls,
            "days": args.days,
            "usage_rows": seeded.usage_rows,
            "notification_rows": seeded.notification_rows,
            "requests_per_kind": args.requests,
            "seeding": timings,
            **figures,
            "items_returned": counts,
            "plans": explained,
            "notes": (
                "ms: one request over real HTTP (loopback) to `receptionist serve` as the owner "
                "of the biggest tenant, sequential, after 3 warm-up requests; floor_ms: the same "
                "SQL by hand through the driver (asyncpg / sqlite3) in this process. list walks "
                "up to 20 pages deep by cursor; filter cycles call_type, status, caller, a week; "
                "search cycles English, Hindi and Hinglish words and word pairs; stats cycles "
                "the default 30 days and 90 days; detail is one call with its usage and "
                "messages. PostgreSQL: throw-away server, shared_buffers 1GB, fsync off."
            ),
        }
        return result
    finally:
        if floor is not None:
            if floor.pg is not None:
                await floor.pg.close()
            if floor.lite is not None:
                floor.lite.close()
        if server_proc is not None:
            code = server_proc.stop()
            if code not in (0, None, -15):
                log(f"server exited {code}:\n{_tail(server_proc.log_path)}")
        if db is not None:
            await db.dispose()
        if pg is not None:
            pg.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def print_table(result: dict[str, Any]) -> None:
    print(f"\nAPI at {result['calls']:,} calls ({result['db']}; owner tenant "
          f"{result['owner_tenant_calls']:,} calls), ms per request")  # fmt: skip
    print(f"{'':8} {'p50':>9} {'p95':>9} {'floor p50':>10} {'floor p95':>10}")
    for kind in ("list", "filter", "search", "stats", "detail"):
        cells = [result.get(f"{kind}_{n}") for n in ("ms_p50", "ms_p95", "floor_ms_p50",
                                                      "floor_ms_p95")]  # fmt: skip
        print(f"{kind:8} " + " ".join(f"{c:>9.2f} " if c is not None else f"{'-':>9} "
                                       for c in cells))  # fmt: skip
    s = result["seeding"]
    print(f"seeding: load {s.get('load_s')} s, indexes {s.get('index_s')} s, analyze "
          f"{s.get('analyze_s')} s, database {s.get('db_size_mb')} MB")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--tenants", type=int, default=5)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--requests", type=int, default=60, help="timed requests per kind")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (database, logs)")
    args = ap.parse_args()
    if args.calls < 1 or args.tenants < 1 or args.days < 1 or args.requests < 1:
        ap.error("--calls, --tenants, --days and --requests must be positive")
    result = asyncio.run(run(args))
    print_table(result)
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
