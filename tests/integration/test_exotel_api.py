"""fetch_call_details over real HTTP (httpx → loopback uvicorn) against FakeExotelApi."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import orjson
import pytest

from receptionist.sim.exotel_api import FakeExotelApi
from receptionist.telephony.exotel_api import (
    ExotelApiConfig,
    ExotelApiError,
    fetch_call_details,
)

SID = "c0ffee0123456789abcdef0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeExotelApi]:
    async with FakeExotelApi(account_sid="sharmaclinic1", api_key="KEY", api_token="TOKEN") as f:
        f.add_call(
            SID,
            from_number="09876543210",
            to_number="08047112233",
            duration_s=42,
            price="1.500",
            recording_url="https://recordings.example/c0ffee.mp3",
        )
        yield f


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def _cfg(fake: FakeExotelApi, **kw: object) -> ExotelApiConfig:
    base: dict[str, object] = {
        "account_sid": "sharmaclinic1",
        "api_key": "KEY",
        "api_token": "TOKEN",
        "base_url": fake.base_url,
        "timeout_s": 60.0,  # only turns a hang into a failure; test_timeout sets its own
    }
    base.update(kw)
    return ExotelApiConfig(**base)  # type: ignore[arg-type]


async def _error(client: httpx.AsyncClient, cfg: ExotelApiConfig, sid: str = SID) -> ExotelApiError:
    with pytest.raises(ExotelApiError) as info:
        await fetch_call_details(client, cfg, sid)
    return info.value


async def test_success(
    fake: FakeExotelApi, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    d = await fetch_call_details(client, _cfg(fake), SID)
    assert d.sid == SID
    assert (d.from_number, d.to_number, d.status, d.direction) == (
        "09876543210",
        "08047112233",
        "completed",
        "inbound",
    )
    assert d.duration_s == 42 and d.price == Decimal("1.500")
    assert d.start_time is not None and d.end_time is not None
    assert (d.end_time - d.start_time).total_seconds() == 42
    assert d.recording_url == "https://recordings.example/c0ffee.mp3"
    assert d.is_final
    [req] = fake.requests
    assert req.path == f"/v1/Accounts/sharmaclinic1/Calls/{SID}.json"
    assert (req.auth_user, req.status_code) == ("KEY", 200)
    assert "TOKEN" not in caplog.text


async def test_wire_shape_matches_docs(fake: FakeExotelApi, client: httpx.AsyncClient) -> None:
    url = f"{fake.base_url}/v1/Accounts/sharmaclinic1/Calls/{SID}"
    r = await client.get(url + ".json", auth=("KEY", "TOKEN"))
    call = orjson.loads(r.content)["Call"]
    assert isinstance(call["Duration"], str) and isinstance(call["Price"], str)
    assert len(call["StartTime"]) == 19 and call["StartTime"][10] == " "
    xml = await client.get(url, auth=("KEY", "TOKEN"))  # no .json: XML, as Exotel does
    assert xml.headers["content-type"].startswith("application/xml")
    assert f"<Sid>{SID}</Sid>" in xml.text


async def test_wrong_token_is_auth(fake: FakeExotelApi, client: httpx.AsyncClient) -> None:
    err = await _error(client, _cfg(fake, api_token="WRONG-SECRET"))
    assert (err.kind, err.status_code, err.retryable) == ("auth", 401, False)
    assert "WRONG-SECRET" not in str(err)
    assert fake.requests[-1].status_code == 401


async def test_other_account_is_auth(fake: FakeExotelApi, client: httpx.AsyncClient) -> None:
    err = await _error(client, _cfg(fake, account_sid="someoneelse"))
    assert (err.kind, err.status_code) == ("auth", 403)


async def test_unknown_call_is_not_found(fake: FakeExotelApi, client: httpx.AsyncClient) -> None:
    err = await _error(client, _cfg(fake), "deadbeef")
    assert (err.kind, err.status_code, err.retryable) == ("not_found", 404, True)
    assert "Call not found" in err.detail


async def test_server_errors_and_rate_limit(fake: FakeExotelApi, client: httpx.AsyncClient) -> None:
    cfg = _cfg(fake)
    fake.fail_next(1, status=503)
    fake.fail_next(1, status=429)
    err = await _error(client, cfg)
    assert (err.kind, err.status_code, err.retryable) == ("server", 503, True)
    err = await _error(client, cfg)
    assert (err.kind, err.status_code, err.retryable) == ("rate_limited", 429, True)
    assert (await fetch_call_details(client, cfg, SID)).is_final  # faults are used up


async def test_timeout(fake: FakeExotelApi, client: httpx.AsyncClient) -> None:
    fake.delay_s = 3600  # the double holds its answer until it is stopped: it never comes in time
    async with asyncio.timeout(60):  # were the client to wait for it, fail instead of hanging
        err = await _error(client, _cfg(fake, timeout_s=0.1))
    assert (err.kind, err.status_code, err.retryable) == ("timeout", None, True)
    assert fake.requests == []  # the double records a request once it has answered it


async def test_connection_refused_is_network(client: httpx.AsyncClient) -> None:
    fake = FakeExotelApi()
    await fake.start()
    base = fake.base_url
    await fake.stop()
    cfg = ExotelApiConfig("ACtest", "key", "token", base_url=base, timeout_s=60.0)
    err = await _error(client, cfg)
    assert (err.kind, err.retryable) == ("network", True)


async def test_garbled_body(fake: FakeExotelApi, client: httpx.AsyncClient) -> None:
    fake.garble_next(1)
    err = await _error(client, _cfg(fake))
    assert (err.kind, err.status_code, err.retryable) == ("bad_response", 200, False)


async def test_not_final_then_final(fake: FakeExotelApi, client: httpx.AsyncClient) -> None:
    clock = [100.0]
    fake.clock = lambda: clock[0]
    fake.add_call("feed01", from_number="09876543210", to_number="08047112233", final_after_s=300)
    early = await fetch_call_details(client, _cfg(fake), "feed01")
    assert early.status == "completed"
    assert (early.duration_s, early.end_time, early.price) == (None, None, None)
    assert not early.is_final
    assert early.missing_fields == ("duration_s", "end_time", "price")
    clock[0] += 300
    late = await fetch_call_details(client, _cfg(fake), "feed01")
    assert late.is_final and late.duration_s == 30 and late.price == Decimal("1.000")


@pytest.mark.parametrize("sid", ["../../Accounts/other/Calls/x", "abc/def", "abc?details=true", ""])
async def test_invalid_sid_rejected_without_request(
    fake: FakeExotelApi, client: httpx.AsyncClient, sid: str
) -> None:
    err = await _error(client, _cfg(fake), sid)
    assert (err.kind, err.retryable) == ("bad_request", False)
    assert fake.requests == []
