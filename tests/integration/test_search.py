"""Search over the owner's API, on both databases: Hindi and Tamil words are found (vowel signs
and all), typed punctuation, SQL and full-text operators are plain words, rows written before the
search column existed are found after the migration, and the analysis' summary is searchable."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from receptionist.store.api_keys import KeyOwner
from receptionist.store.calls import FinishedCall, finish_call
from receptionist.store.db import Database
from receptionist.store.schema import call_details
from receptionist.store.search import (
    caller_key,
    caller_prefix,
    fts5_query,
    pg_tsquery,
    query_words,
    search_document,
    words,
)
from receptionist.web import queries
from receptionist.web.call_list import CallFilters
from receptionist.web.deps import WebDeps
from receptionist.web.scope import Scope
from tests.integration.test_api import T0, Api, seed_call
from tests.integration.test_api import api as api

HINDI = "नमस्ते, मुझे दो किलो चॉकलेट केक चाहिए। क्या आप कल डिलीवरी करेंगे?"
TAMIL = "வணக்கம், எனக்கு ஒரு கேக் வேண்டும். நாளை டெலிவரி செய்வீர்களா?"
MIXED = "Mujhe ek cake chahiye, 100% eggless, कल शाम तक; price 'special' \"offer\" AND NEAR-by?"


async def _speak(db: Database, sid: str, text: str, minutes: int = 0) -> None:
    at = T0 + timedelta(minutes=minutes)
    await finish_call(
        db,
        FinishedCall(
            call_sid=sid,
            status="completed",
            tenant="bakery",
            started_at=at,
            ended_at=at + timedelta(seconds=30),
            transcript=[
                {"speaker": "agent", "text": "Hello!", "start_ms": 0, "end_ms": 900},
                {"speaker": "caller", "text": text, "start_ms": 1000, "end_ms": 4000},
            ],
        ),
    )


async def _found(api: Api, q: str) -> list[str]:
    async with api.client("bakery") as c:
        got = await c.get("/api/v1/calls", params={"q": q})
    assert got.status_code == 200, (q, got.text)
    return sorted(x["call_sid"] for x in got.json()["items"] if x["call_sid"].startswith("CA-"))


async def test_hindi_and_tamil_words_are_found(api: Api) -> None:
    await _speak(api.db, "CA-hi", HINDI, 10)
    await _speak(api.db, "CA-ta", TAMIL, 11)
    await _speak(api.db, "CA-mix", MIXED, 12)
    for q in ("केक", "चाहिए", "किलो", "चॉकलेट", "डिलीवरी करेंगे", "नमस्ते"):
        assert await _found(api, q) == ["CA-hi"], q
    assert await _found(api, "कल") == ["CA-hi", "CA-mix"]  # a whole word in both
    assert await _found(api, "चॉक") == ["CA-hi"]  # a word's start (it ends in a vowel sign)
    assert await _found(api, "कि") == ["CA-hi"]  # क + ि: the sign is part of the word
    for q in ("வேண்டும்", "கேக்", "வணக்கம்", "டெலிவரி"):
        assert await _found(api, q) == ["CA-ta"], q
    assert await _found(api, "पनीर") == []
    assert await _found(api, "लो") == []  # inside a word, not its start: not a match
    assert await _found(api, "CHAHIYE eggless") == ["CA-mix"]  # every word, any case


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("100%", ["CA-mix"]),
        ("%", []),
        ("_", []),
        ("%_%", []),
        ("'special'", ["CA-mix"]),
        ("'", []),
        ('"offer', ["CA-mix"]),
        ('"', []),
        ("AND", ["CA-mix"]),  # a word here, not an operator
        ("NEAR", ["CA-mix"]),
        ("NEAR(cake eggless)", ["CA-mix"]),
        ("cake AND NOT chahiye", []),  # "not" is a word nobody said
        ("cake OR zzz", []),
        ("*", []),
        ("cake*", ["CA-mix"]),
        ("-", []),
        ("-cake", ["CA-mix"]),
        ("cake -chahiye", ["CA-mix"]),
        ("\\", []),
        ("cake:*", ["CA-mix"]),
        ("&|!()<->", []),
        ("'; DROP TABLE call_details; --", []),
        ("^cake", ["CA-mix"]),
        ("{eggless}", ["CA-mix"]),
    ],
)
async def test_typed_operators_are_searched_literally(
    api: Api, q: str, expected: list[str]
) -> None:
    await _speak(api.db, "CA-mix", MIXED)
    assert await _found(api, q) == expected


async def test_the_analysis_summary_and_type_are_searchable(api: Api) -> None:
    await seed_call(
        api.db, "CA-sum", "bakery", summary="Wants a wedding cake on Sunday", call_type="enquiry"
    )
    assert await _found(api, "wedding") == ["CA-sum"]
    assert "CA-sum" in await _found(api, "enquiry")


async def test_rows_from_before_the_search_column_are_backfilled(db: Database) -> None:
    await db.downgrade("0004_web_sessions")
    old = sa.table(
        "call_details",
        sa.column("session_id", sa.Text()),
        sa.column("call_sid", sa.Text()),
        sa.column("tenant", sa.Text()),
        sa.column("from_number", sa.Text()),
        sa.column("status", sa.Text()),
        sa.column("transcript", sa.JSON()),
        sa.column("summary", sa.Text()),
        sa.column("started_at", sa.DateTime(timezone=True)),
    )
    turns = [
        {"speaker": "caller", "text": "मुझे केक चाहिए", "start_ms": 0, "end_ms": 1000},
        {"speaker": "agent", "text": "ज़रूर", "start_ms": 1700, "end_ms": 2000},
    ]
    async with db.begin() as conn:
        await conn.execute(
            sa.insert(old).values(
                session_id="s-old",
                call_sid="CA-old",
                tenant="bakery",
                from_number="09800000042",
                status="completed",
                transcript=turns,
                summary="Ordered a cake",
                started_at=T0.replace(tzinfo=None) if db.dialect == "sqlite" else T0,
            )
        )
    await db.upgrade()
    async with db.session() as conn:
        row = (
            await conn.execute(
                sa.select(
                    call_details.c.search_text, call_details.c.caller_key, call_details.c.stats
                )
            )
        ).one()
    assert set(row.search_text.split()) >= {"केक", "चाहिए", "ordered", "cake"}
    assert row.caller_key == caller_key("09800000042")
    assert row.stats["response_ms"] == [700.0]
    deps = WebDeps(db=db, tenants=_NoTenants(), usd_inr=Decimal(84))  # type: ignore[arg-type]
    scope = Scope.of(KeyOwner(key_id=1, tenant="bakery"), None)
    for q in ("केक", "ORDERED"):
        page = await queries.calls_page(scope, deps, CallFilters(q=q), None, 10)
        assert [c.call_sid for c in page.items] == ["CA-old"], q
    page = await queries.calls_page(scope, deps, CallFilters(caller="+91 98000 00042"), None, 10)
    assert [c.call_sid for c in page.items] == ["CA-old"]


class _NoTenants:
    """No tenant folders: the scope falls back to the default time zone."""

    def get_any(self, tenant: str) -> object:
        raise KeyError(tenant)


def test_words_keep_vowel_signs_and_drop_joiners() -> None:
    assert words("किताबें, please!") == ["किताबें", "please"]
    assert words("क्‍ष") == ["क्ष"]  # a zero-width joiner inside the word is not a break
    assert words("ÉCOLE Straße") == ["école", "strasse"]
    assert words("x" * 100) == ["x" * 64]
    assert query_words("cake CAKE cake") == ["cake"]
    assert search_document([{"text": "a b"}, "junk", {"text": None}], "b c", None) == "b c a"


def test_index_queries_quote_every_word() -> None:
    assert pg_tsquery(["it's", "a\\b"]) == "'it''s':* & 'a\\\\b':*"
    assert fts5_query(['say "hi"', "AND"]) == '"say ""hi"""* "AND"*'
    assert caller_prefix("919800000042") == ("2400000089", "2400000089:")
    assert caller_key("+91 98000-00042") == "240000008919"
