"""Msg91Provider over real HTTP (httpx -> loopback uvicorn) against FakeMsg91, and the double's
delivery reports posted to a small receiver started here."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from receptionist.bridge.server import serve_in_process
from receptionist.notify.msg91 import (
    BULK_PATH,
    Msg91Config,
    Msg91Provider,
    classify_response,
    classify_transport_error,
)
from receptionist.notify.provider import (
    ACCEPTED,
    AMBIGUOUS,
    REJECTED,
    RETRY,
    OutgoingMessage,
    SendResult,
)
from receptionist.notify.webhook import parse_reports
from receptionist.sim.msg91 import FakeMsg91

KEY = "test-authkey"
SENDER = "918047112233"  # the business's WhatsApp number (integrated number)
CUSTOMER = "919800000001"
TEMPLATE = "order_confirmation"
VARS = ("Asha", "2 dosa", "Friday 7 pm", "Sharma Cafe")


# One double (one loopback server) serves the whole module: starting and stopping uvicorn per
# test would cost ~0.25 s each. Every test gets it reset; async tests and fixtures run in the
# module's event loop, where the server lives.
# (The few pure-function tests are async too, only so that this module-wide mark fits them.)
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_fake() -> AsyncIterator[FakeMsg91]:
    async with FakeMsg91(auth_key=KEY) as f:
        yield f


@pytest.fixture
def fake(shared_fake: FakeMsg91) -> FakeMsg91:
    shared_fake.reset()
    shared_fake.approve(TEMPLATE, language="en", variables=4)
    return shared_fake


def _config(fake: FakeMsg91, **kw: Any) -> Msg91Config:
    base: dict[str, Any] = {
        "auth_key": KEY,
        "integrated_number": SENDER,
        "base_url": fake.base_url,
        "timeout_s": 0.5,
        "connect_timeout_s": 0.5,
    }
    base.update(kw)
    return Msg91Config(**base)


@pytest_asyncio.fixture(loop_scope="module")
async def provider(fake: FakeMsg91) -> AsyncIterator[Msg91Provider]:
    p = Msg91Provider(_config(fake))
    yield p
    await p.aclose()


def _msg(**kw: Any) -> OutgoingMessage:
    base = OutgoingMessage(
        notification_id=7,
        to=CUSTOMER,
        template=TEMPLATE,
        language="en",
        variables=VARS,
        text="Hi Asha, your order of 2 dosa is confirmed for Friday 7 pm. Sharma Cafe",
    )
    return replace(base, **kw)


# ---------------------------------------------------------------- success and the wire


async def test_success_returns_request_id_and_sends_documented_body(
    fake: FakeMsg91, provider: Msg91Provider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await provider.send(_msg(namespace="ns_1234"))
    assert result.outcome == ACCEPTED and result.http_status == 200
    [accepted] = fake.messages
    assert result.provider_ref == accepted.request_id and re.fullmatch(
        r"[0-9a-f]{32}", accepted.request_id
    )
    assert (accepted.to, accepted.template, accepted.language) == (CUSTOMER, TEMPLATE, "en")
    assert (accepted.variables, accepted.integrated_number) == (VARS, SENDER)
    assert (accepted.namespace, accepted.auth_key) == ("ns_1234", KEY)
    assert fake.accepted_for(CUSTOMER, TEMPLATE) == 1
    assert fake.accepted_for(CUSTOMER, "other") == 0

    [req] = fake.requests
    assert (req.method, req.path, req.auth_key, req.status_code) == ("POST", BULK_PATH, KEY, 200)
    assert req.json() == {
        "integrated_number": SENDER,
        "content_type": "template",
        "payload": {
            "messaging_product": "whatsapp",
            "type": "template",
            "template": {
                "name": TEMPLATE,
                "language": {"code": "en", "policy": "deterministic"},
                "namespace": "ns_1234",
                "to_and_components": [
                    {
                        "to": [CUSTOMER],
                        "components": {
                            f"body_{i}": {"type": "text", "value": v}
                            for i, v in enumerate(VARS, start=1)
                        },
                    }
                ],
            },
        },
    }
    assert KEY not in caplog.text
    assert "9198•••••001" in caplog.text and CUSTOMER not in caplog.text


async def test_no_namespace_key_without_namespace(fake: FakeMsg91, provider: Msg91Provider) -> None:
    assert (await provider.send(_msg())).outcome == ACCEPTED
    assert "namespace" not in fake.requests[0].json()["payload"]["template"]


async def test_variables_are_made_whatsapp_safe(fake: FakeMsg91, provider: Msg91Provider) -> None:
    messy = ("Asha\nKumar", "2\tdosa", "", "Sharma      Cafe ")
    result = await provider.send(_msg(variables=messy))
    assert result.outcome == ACCEPTED, result.reason
    assert fake.messages[0].variables == ("Asha Kumar", "2 dosa", "-", "Sharma Cafe")


async def test_config_repr_hides_the_key() -> None:
    assert "s3cret" not in repr(Msg91Config("s3cret", SENDER))


# ---------------------------------------------------------------- refused for good


async def test_wrong_key_is_rejected_with_reason(
    fake: FakeMsg91, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    p = Msg91Provider(_config(fake, auth_key="WRONG-SECRET"))
    result = await p.send(_msg())
    await p.aclose()
    assert (result.outcome, result.http_status) == (REJECTED, 401)
    assert "HTTP 401" in result.reason and "Authentication failure" in result.reason
    assert "WRONG-SECRET" not in result.reason and "WRONG-SECRET" not in caplog.text
    assert fake.messages == [] and fake.requests[0].status_code == 401


async def test_per_message_auth_key_overrides_config(fake: FakeMsg91) -> None:
    fake.auth_keys.add("tenant-key")
    p = Msg91Provider(_config(fake, auth_key="WRONG"))
    ok = await p.send(_msg(auth_key="tenant-key"))
    refused = await p.send(_msg())  # falls back to the (wrong) provider key
    await p.aclose()
    assert ok.outcome == ACCEPTED and fake.messages[0].auth_key == "tenant-key"
    assert refused.outcome == REJECTED and refused.http_status == 401
    assert [r.auth_key for r in fake.requests] == ["tenant-key", "WRONG"]


async def test_missing_integrated_number_is_rejected_without_request(fake: FakeMsg91) -> None:
    p = Msg91Provider(_config(fake, integrated_number=None))
    result = await p.send(_msg())
    assert result.outcome == REJECTED and "integrated number" in result.reason
    assert fake.requests == []
    # the tenant's own number, given with the message, is used (and cleaned of "+")
    assert (await p.send(_msg(integrated_number="+91 80 4711 2233"))).outcome == ACCEPTED
    assert fake.messages[0].integrated_number == SENDER
    await p.aclose()


async def test_number_without_country_code_is_400(
    fake: FakeMsg91, provider: Msg91Provider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="receptionist.notify")
    result = await provider.send(_msg(to="9800000001"))
    assert (result.outcome, result.http_status) == (REJECTED, 400)
    assert "9800000001" in result.reason and "HTTP 400" in result.reason  # for the owner
    assert "9800000001" not in caplog.text and "9800•••001" in caplog.text  # not in logs
    assert fake.messages == []


async def test_number_not_in_digits_form_is_rejected_without_request(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    result = await provider.send(_msg(to="+919800000001"))
    assert result.outcome == REJECTED and "+919800000001" in result.reason
    assert fake.requests == []


TEMPLATE_PROBLEMS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"template": "no_such_template"}, ("no_such_template", "not found")),
    ({"language": "hi"}, ("not approved in language 'hi'",)),
    ({"variables": ("Asha", "2 dosa")}, ("expects 4 body variables, got 2",)),
]


async def test_template_problems_are_400(fake: FakeMsg91, provider: Msg91Provider) -> None:
    for change, words in TEMPLATE_PROBLEMS:
        result = await provider.send(_msg(**change))
        assert (result.outcome, result.http_status) == (REJECTED, 400), change
        for word in words:
            assert word in result.reason, change
    assert fake.messages == []


async def test_any_template_goes_when_none_registered(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    fake.reset()  # no approved templates
    assert (await provider.send(_msg(template="whatever", variables=()))).outcome == ACCEPTED


# ---------------------------------------------------------------- scripted faults


@dataclass(frozen=True)
class FaultCase:
    status: int
    body: Any
    outcome: str
    words: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    retry_after_s: float | None = None


FAULTS = {
    "500 msg91": FaultCase(500, None, RETRY, ("HTTP 500", "Internal server error")),
    "503 msg91": FaultCase(503, None, RETRY, ("HTTP 503",)),
    "502 gateway html": FaultCase(502, "<html><h1>502 Bad Gateway</h1></html>", RETRY, ("502",)),
    "504 gateway html": FaultCase(504, "<html>504 Gateway Time-out</html>", RETRY, ("504",)),
    "429 retry-after": FaultCase(
        429, None, RETRY, ("HTTP 429",), {"Retry-After": "7"}, retry_after_s=7.0
    ),
    "408": FaultCase(408, None, RETRY, ("HTTP 408",)),
    "400 legacy body": FaultCase(
        400, {"message": "error", "msg": "Invalid template name"}, REJECTED, ("Invalid template",)
    ),
    "403": FaultCase(403, None, REJECTED, ("HTTP 403", "Forbidden")),
    "404": FaultCase(404, None, REJECTED, ("HTTP 404",)),
    "422 errors list": FaultCase(
        422, {"errors": ["to is invalid", "value too long"]}, REJECTED, ("to is invalid",)
    ),
    "200 saying fail": FaultCase(
        200,
        {"status": "fail", "hasError": True, "errors": "Insufficient balance", "code": "402"},
        REJECTED,
        ("HTTP 200", "Insufficient balance"),
    ),
    "200 saying nothing": FaultCase(200, {"ok": 1}, AMBIGUOUS, ("HTTP 200",)),
}


async def test_provider_answers_are_classified(fake: FakeMsg91, provider: Msg91Provider) -> None:
    # one double for all cases: starting a server per case would double the file's run time
    for name, case in FAULTS.items():
        fake.fail_next(case.status, case.body, headers=case.headers)
        result = await provider.send(_msg())
        assert (result.outcome, result.http_status) == (case.outcome, case.status), name
        for word in case.words:
            assert word in result.reason, (name, result.reason)
        assert result.retry_after_s == case.retry_after_s, name
        assert fake.messages == [], name  # a scripted failure never takes the message
    assert (await provider.send(_msg())).outcome == ACCEPTED  # the faults are used up


async def test_fail_next_count(fake: FakeMsg91, provider: Msg91Provider) -> None:
    fake.fail_next(503, count=2)
    outcomes = [(await provider.send(_msg())).outcome for _ in range(3)]
    assert outcomes == [RETRY, RETRY, ACCEPTED]


async def test_garbled_200_is_ambiguous_and_the_double_took_it(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    fake.garble_next()
    result = await provider.send(_msg())
    assert (result.outcome, result.http_status) == (AMBIGUOUS, 200)
    assert "not JSON" in result.reason
    assert fake.accepted_for(CUSTOMER, TEMPLATE) == 1
    assert fake.requests[0].outcome == "garbled"


async def test_read_timeout_is_ambiguous_and_the_double_took_it(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    fake.hold(accept=True)  # taken, and the answer held until released: never, here
    result = await provider.send(_msg())
    assert result.outcome == AMBIGUOUS and "ReadTimeout" in result.reason
    # the client gave up on its own while the double still held the answer
    [req] = fake.requests
    assert fake.held == [req] and req.status_code is None and req.outcome == "accepted"
    assert fake.accepted_for(CUSTOMER, TEMPLATE) == 1
    fake.release()


async def test_hang_before_accepting_is_still_ambiguous_to_the_client(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    fake.hold(accept=False)
    result = await provider.send(_msg())
    assert result.outcome == AMBIGUOUS  # the client cannot tell this case from the one above
    [req] = fake.requests
    assert fake.held == [req] and req.status_code is None and req.outcome == "held"
    assert fake.accepted_for(CUSTOMER) == 0


async def test_hang_next_answers_after_the_clients_timeout(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    # both deadlines are timers of this one event loop: the client's (0.5 s after sending)
    # always comes before the double's (60 s after receiving), however slow the machine
    fake.hang_next(60.0)
    fake.hang_next(60.0, accept=False)
    took, refused = await provider.send(_msg()), await provider.send(_msg(to="919800000002"))
    assert took.outcome == AMBIGUOUS and refused.outcome == AMBIGUOUS
    assert [(r.outcome, r.status_code) for r in fake.requests] == [("hung", None)] * 2
    assert fake.accepted_for(CUSTOMER) == 1 and fake.accepted_for("919800000002") == 0


async def test_a_released_request_held_before_acceptance_is_a_503_and_not_taken(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    fake.hold(after=1, accept=False)
    assert (await provider.send(_msg())).outcome == ACCEPTED  # the one let through
    second = asyncio.create_task(provider.send(_msg(to="919800000002")))
    [held] = await fake.wait_held(1)
    assert held.json()["payload"]["template"]["to_and_components"][0]["to"] == ["919800000002"]
    fake.release()
    result = await second
    assert (result.outcome, result.http_status) == (RETRY, 503)
    assert held.held and fake.held == [] and fake.accepted_for("919800000002") == 0
    assert (await provider.send(_msg(to="919800000002"))).outcome == ACCEPTED  # gate gone


async def test_a_released_request_held_after_acceptance_is_answered(
    fake: FakeMsg91,
) -> None:
    # a client that waits long enough gets the answer the double held
    p = Msg91Provider(_config(fake, timeout_s=60.0))
    fake.hold(accept=True)
    send = asyncio.create_task(p.send(_msg()))
    [held] = await fake.wait_held(1)
    assert fake.accepted_for(CUSTOMER, TEMPLATE) == 1 and held.status_code is None
    fake.release()
    result = await send
    await p.aclose()
    assert result.outcome == ACCEPTED and result.provider_ref == held.request_id
    assert held.status_code == 200


async def test_a_hold_cannot_be_stacked_and_reset_clears_it(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    fake.hold(accept=False)
    with pytest.raises(RuntimeError):
        fake.hold(accept=True)
    fake.reset()
    fake.approve(TEMPLATE, language="en", variables=4)
    assert (await provider.send(_msg())).outcome == ACCEPTED
    assert not fake.requests[0].held


async def test_dropped_connection_is_ambiguous_and_the_double_took_it(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    fake.drop_next()
    result = await provider.send(_msg())
    assert result.outcome == AMBIGUOUS and result.http_status is None
    assert "RemoteProtocolError" in result.reason
    assert fake.accepted_for(CUSTOMER, TEMPLATE) == 1
    assert (fake.requests[0].outcome, fake.requests[0].status_code) == ("dropped", None)
    assert (await provider.send(_msg())).outcome == ACCEPTED  # next connection is fine


async def test_drop_fallback_when_the_connection_cannot_be_reached(
    fake: FakeMsg91, provider: Msg91Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # if uvicorn's internals change, the double answers headers and then closes the connection
    monkeypatch.setattr("receptionist.sim.msg91.server._abort_connection", lambda: False)
    fake.drop_next()
    result = await provider.send(_msg())
    assert result.outcome == AMBIGUOUS and "RemoteProtocolError" in result.reason
    assert fake.accepted_for(CUSTOMER, TEMPLATE) == 1


async def test_post_accept_fault_is_spent_by_a_refused_request(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    fake.garble_next()
    assert (await provider.send(_msg(to="9800000001"))).outcome == REJECTED
    assert (await provider.send(_msg())).outcome == ACCEPTED


async def test_delay_s_slows_every_answer(fake: FakeMsg91, provider: Msg91Provider) -> None:
    # Without a delay the double records and answers a request in one step (nothing is awaited
    # in between), so a request this test finds recorded but unanswered is one held back by it.
    fake.delay_s = 0.2
    for n, to in enumerate((CUSTOMER, "919800000002"), start=1):
        send = asyncio.create_task(provider.send(_msg(to=to)))
        async with asyncio.timeout(10):
            while len(fake.requests) < n:  # noqa: ASYNC110 (checked at every loop turn)
                await asyncio.sleep(0)
        assert fake.requests[-1].status_code is None and fake.accepted_for(to) == 0
        assert (await send).outcome == ACCEPTED
        assert fake.requests[-1].status_code == 200


async def test_connection_refused_is_retry() -> None:
    gone = FakeMsg91(auth_key=KEY)
    await gone.start()
    cfg = _config(gone)
    await gone.stop()
    p = Msg91Provider(cfg)
    result = await p.send(_msg())
    await p.aclose()
    assert result.outcome == RETRY and "ConnectError" in result.reason


async def test_pool_timeout_is_retry_and_nothing_reaches_msg91(fake: FakeMsg91) -> None:
    fake.hold(accept=True)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as client:
        # a read timeout far beyond the pool's: the first send waits for its held answer
        p = Msg91Provider(_config(fake, timeout_s=60.0, connect_timeout_s=0.15), client=client)
        first = asyncio.create_task(p.send(_msg()))
        await fake.wait_held(1)  # the first request holds the only connection
        second = await p.send(_msg(to="919800000002"))
        assert len(fake.requests) == 1  # the second never reached the double
        fake.release()
        assert (await first).outcome == ACCEPTED
        await p.aclose()  # an injected client is the caller's to close
        assert not client.is_closed
    assert second.outcome == RETRY and "PoolTimeout" in second.reason
    assert fake.accepted_for("919800000002") == 0


def _request() -> httpx.Request:
    return httpx.Request("POST", "https://api.msg91.com" + BULK_PATH)


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (httpx.ConnectError("refused", request=_request()), RETRY),
        (httpx.ConnectTimeout("slow connect", request=_request()), RETRY),
        (httpx.PoolTimeout("no connection free", request=_request()), RETRY),
        (httpx.ProxyError("proxy said no", request=_request()), RETRY),
        (httpx.UnsupportedProtocol("ftp://", request=_request()), RETRY),
        (httpx.InvalidURL("bad port"), RETRY),
        (httpx.ReadTimeout("slow answer", request=_request()), AMBIGUOUS),
        (httpx.WriteTimeout("slow upload", request=_request()), AMBIGUOUS),
        (httpx.ReadError("reset", request=_request()), AMBIGUOUS),
        (httpx.WriteError("broken pipe", request=_request()), AMBIGUOUS),
        (httpx.RemoteProtocolError("closed", request=_request()), AMBIGUOUS),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v,
)
async def test_network_errors_are_classified(
    exc: httpx.HTTPError | httpx.InvalidURL, outcome: str
) -> None:
    assert classify_transport_error(exc).outcome == outcome


# ---------------------------------------------------------------- reading bodies (lenient)


def _classify(status: int, body: Any, **headers: str) -> SendResult:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return classify_response(status, content, httpx.Headers(headers))


@pytest.mark.parametrize(
    ("body", "ref"),
    [
        ({"status": "success", "hasError": False, "request_id": "abc123"}, "abc123"),
        ({"status": "Success", "data": {"request_id": "in-data"}}, "in-data"),
        ({"hasError": False, "requestId": "camel"}, "camel"),
        ({"type": "success", "message": "3561706b6a51313233343536"}, "3561706b6a51313233343536"),
        ({"status": "success", "request_id": ["only-one"]}, "only-one"),
    ],
)
async def test_success_bodies(body: dict[str, Any], ref: str) -> None:
    result = _classify(200, body)
    assert (result.outcome, result.provider_ref) == (ACCEPTED, ref)


async def test_success_without_request_id_is_accepted_with_a_note() -> None:
    result = _classify(200, {"status": "success", "data": "queued"})
    assert result.outcome == ACCEPTED and result.provider_ref is None
    assert "no request id" in result.reason


@pytest.mark.parametrize(
    "body", [b"", b"<html>ok</html>", b'{"status": "succ', b"[1, 2]", b'"success"']
)
async def test_unreadable_2xx_is_ambiguous(body: bytes) -> None:
    assert _classify(200, body).outcome == AMBIGUOUS
    assert _classify(202, body).outcome == AMBIGUOUS


async def test_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    result = _classify(429, {"msg": "slow down"}, **{"Retry-After": when})
    assert result.outcome == RETRY and result.retry_after_s is not None
    assert 25 <= result.retry_after_s <= 31
    assert _classify(429, b"", **{"Retry-After": "soon"}).retry_after_s is None


async def test_redirect_is_rejected_as_a_setting_problem() -> None:
    result = _classify(301, b"", location="https://control.msg91.com" + BULK_PATH)
    assert result.outcome == REJECTED and "base URL" in result.reason


async def test_long_reasons_are_cut() -> None:
    result = _classify(400, {"errors": "x" * 5000})
    assert result.outcome == REJECTED and len(result.reason) < 400


# ---------------------------------------------------------------- delivery reports


@dataclass
class Receiver:
    url: str
    secret: str | None
    got: list[tuple[dict[str, Any], dict[str, str], dict[str, str]]] = field(default_factory=list)


@pytest_asyncio.fixture(loop_scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    """A stand-in for our webhook: 401 unless the shared secret comes with the report."""
    state = Receiver(url="", secret="hook-secret")

    async def hook(request: Request) -> JSONResponse:
        given = request.query_params.get("secret") or request.headers.get("x-webhook-secret")
        if state.secret is not None and given != state.secret:
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        payload = orjson.loads(await request.body())
        state.got.append((payload, dict(request.headers), dict(request.query_params)))
        return JSONResponse({"ok": 1})

    app = Starlette(routes=[Route("/webhooks/msg91", hook, methods=["POST"])])
    async with serve_in_process(app, lifespan="off") as port:
        state.url = f"http://127.0.0.1:{port}/webhooks/msg91"
        yield state


async def _sent(fake: FakeMsg91, provider: Msg91Provider) -> str:
    result = await provider.send(_msg())
    assert result.outcome == ACCEPTED and result.provider_ref
    return result.provider_ref


async def test_report_with_secret_header(
    fake: FakeMsg91, provider: Msg91Provider, receiver: Receiver
) -> None:
    ref = await _sent(fake, provider)
    fake.webhook_url, fake.webhook_secret = receiver.url, "hook-secret"
    assert await fake.report(ref, "delivered") == 200
    [(payload, headers, query)] = receiver.got
    assert headers["x-webhook-secret"] == "hook-secret" and query == {}
    assert headers["content-type"] == "application/json"
    [accepted] = fake.messages
    assert payload["requestId"] == ref and payload["uuid"] == accepted.uuid
    assert payload["status"] == "delivered"
    assert (payload["customerNumber"], payload["integratedNumber"]) == (CUSTOMER, SENDER)
    assert (payload["templateName"], payload["direction"]) == (TEMPLATE, "outbound")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", payload["requestedAt"])
    assert fake.reports[-1].status_code == 200


async def test_report_with_secret_in_query(
    fake: FakeMsg91, provider: Msg91Provider, receiver: Receiver
) -> None:
    ref = await _sent(fake, provider)
    fake.webhook_url, fake.webhook_secret = receiver.url, "hook-secret"
    assert await fake.report(ref, "read", secret_in_query=True) == 200
    [(_, headers, query)] = receiver.got
    assert query == {"secret": "hook-secret"} and "x-webhook-secret" not in headers
    assert "hook-secret" not in fake.reports[-1].url


async def test_report_without_or_with_wrong_secret_gets_401(
    fake: FakeMsg91, provider: Msg91Provider, receiver: Receiver
) -> None:
    ref = await _sent(fake, provider)
    fake.webhook_url = receiver.url
    assert await fake.report(ref, "delivered") == 401  # MSG91 itself sends no secret
    fake.webhook_secret = "guess"
    assert await fake.report(ref, "delivered") == 401
    assert receiver.got == []
    receiver.secret = None  # a receiver that asks for nothing takes it
    fake.webhook_secret = None
    assert await fake.report(ref, "failed", reason="131026 Message undeliverable") == 200
    assert receiver.got[0][0]["reason"] == "131026 Message undeliverable"


async def test_auto_reports_follow_each_accepted_message(
    fake: FakeMsg91, provider: Msg91Provider, receiver: Receiver
) -> None:
    fake.webhook_url, fake.webhook_secret = receiver.url, "hook-secret"
    fake.auto_report = ["sent", "delivered"]
    ref = await _sent(fake, provider)
    fake.garble_next()  # taken, then an unreadable answer: the reports still come
    garbled = await provider.send(_msg(to="919800000002"))
    assert garbled.outcome == AMBIGUOUS
    await fake.reports_settled()
    got = [(p["customerNumber"], p["status"]) for p, _, _ in receiver.got]
    assert got.count((CUSTOMER, "sent")) == 1 and got.count((CUSTOMER, "delivered")) == 1
    assert got.index((CUSTOMER, "sent")) < got.index((CUSTOMER, "delivered"))
    assert ("919800000002", "delivered") in got
    # the ambiguous send can be resolved from its report: same recipient, its own request id
    [late] = [m for m in fake.messages if m.to == "919800000002"]
    assert late.request_id != ref


async def test_one_report_per_recipient_of_a_bulk_request(
    fake: FakeMsg91, receiver: Receiver
) -> None:
    body = {
        "integrated_number": SENDER,
        "content_type": "template",
        "payload": {
            "messaging_product": "whatsapp",
            "type": "template",
            "template": {
                "name": TEMPLATE,
                "language": {"code": "en", "policy": "deterministic"},
                "to_and_components": [
                    {
                        "to": [CUSTOMER, "919800000002"],
                        "components": {
                            f"body_{i}": {"type": "text", "value": v} for i, v in enumerate(VARS, 1)
                        },
                    }
                ],
            },
        },
    }
    async with httpx.AsyncClient() as client:
        r = await client.post(fake.base_url + BULK_PATH, json=body, headers={"authkey": KEY})
    assert r.status_code == 200 and r.json()["status"] == "success"
    ref = r.json()["request_id"]
    assert [m.to for m in fake.messages_for(ref)] == [CUSTOMER, "919800000002"]
    fake.webhook_url, fake.webhook_secret = receiver.url, "hook-secret"
    assert await fake.report(ref, "sent") == 200
    assert [p["customerNumber"] for p, _, _ in receiver.got] == [CUSTOMER, "919800000002"]
    assert await fake.report(ref, "read", to="919800000002") == 200
    assert receiver.got[-1][0]["customerNumber"] == "919800000002"


async def test_our_webhook_parser_reads_the_doubles_reports(
    fake: FakeMsg91, provider: Msg91Provider
) -> None:
    ref = await _sent(fake, provider)
    [accepted] = fake.messages
    for status, expected in (("sent", "sent"), ("delivered", "delivered"), ("read", "read")):
        [report] = parse_reports(orjson.dumps(fake.report_payload(accepted, status)))
        assert (report.provider_ref, report.status) == (ref, expected)
        assert (report.recipient, report.template_name) == (CUSTOMER, TEMPLATE)
    [failed] = parse_reports(orjson.dumps(fake.report_payload(accepted, "failed", "blocked")))
    assert (failed.status, failed.reason) == ("failed", "blocked")


def _bulk(components: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A bulk request body to CUSTOMER with ``components``; ``top`` replaces top-level keys."""
    template = {
        "name": "any_template",
        "language": {"code": "en"},
        "to_and_components": [{"to": [CUSTOMER], "components": components}],
    }
    body: dict[str, Any] = {
        "integrated_number": SENDER,
        "content_type": "template",
        "payload": {"template": template},
    }
    body.update(top)
    return body


def _text(value: str) -> dict[str, str]:
    return {"type": "text", "value": value}


MALFORMED: list[tuple[bytes, str]] = [
    (b"not json", "not valid JSON"),
    (b"[]", "JSON object"),
    (orjson.dumps(_bulk({}, integrated_number="+918047112233")), "integrated_number"),
    (orjson.dumps(_bulk({}, content_type="text")), "content_type"),
    (orjson.dumps(_bulk({"body_1": _text("x" * 1025)})), "1024"),
    (orjson.dumps(_bulk({"body_1": _text("two\nlines")})), "new lines"),
    (orjson.dumps(_bulk({"body_1": _text("   ")})), "non-empty"),
    (orjson.dumps(_bulk({"body_1": {"type": "image", "value": "x"}})), "'text'"),
    (orjson.dumps(_bulk({"body_2": _text("x")})), "body_1..body_n"),
    (orjson.dumps(_bulk({"footer_1": _text("x")})), "unknown component"),
]


async def test_double_refuses_malformed_requests(fake: FakeMsg91) -> None:
    fake.reset()  # no approved templates: only the shape is checked
    url = fake.base_url + BULK_PATH
    async with httpx.AsyncClient() as client:
        r = await client.post(url, json=_bulk({"body_1": _text("ok")}))  # no authkey
        assert r.status_code == 401
        assert {k: r.json()[k] for k in ("status", "hasError", "code")} == {
            "status": "fail",
            "hasError": True,
            "code": "401",
        }
        for content, words in MALFORMED:
            r = await client.post(url, content=content, headers={"authkey": KEY})
            assert r.status_code == 400, content
            assert r.json()["status"] == "fail" and words in r.json()["errors"], r.json()
        r = await client.post(url, json=_bulk({"body_1": _text("ok")}), headers={"authkey": KEY})
        assert r.status_code == 200 and r.json()["request_id"]
    assert [m.variables for m in fake.messages] == [("ok",)]
