"""Phone numbers and secrets never reach a log line: message, extra fields, traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from receptionist.config import load_settings
from receptionist.logs import configure_logging, setup_logging
from receptionist.redact import Redactor, mask_phones, secrets_in_environment

log = logging.getLogger("receptionist.test")

GEMINI = "AIzaSyD-gemini-secret-0123456789"
MSG91 = "412345Aa1b2c3d4e5f6msg91"
EXOTEL = "exotel-token-9f8e7d6c5b4a"
WEBHOOK = "hook-secret-b7c1d2e3"


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """JSON logging set up from settings holding every kind of secret; returns a reader."""
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "MSG91_AUTH_KEY", "DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BAKERY_MSG91_KEY", "tenant-own-msg91-key")  # a tenant's `auth_key_env`
    settings = load_settings(
        _env_file=None,
        log_format="json",
        gemini_api_key=SecretStr(GEMINI),
        msg91_auth_key=SecretStr(MSG91),
        msg91_webhook_secret=SecretStr(WEBHOOK),
        exotel_account_sid="acct",
        exotel_api_key="key",
        exotel_api_token=SecretStr(EXOTEL),
    )
    configure_logging(settings)

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines()]

    yield read
    logging.getLogger().handlers.clear()
    setup_logging()  # back to the default redactor


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("9876543210", "•••••••210"),  # a bare mobile
        ("+919876543210", "+•••••••••210"),  # E.164
        ("+91 98765 43210", "+•••••••••210"),  # with spaces
        ("+91-98765-43210", "+•••••••••210"),  # with dashes
        ("98765-43210", "•••••••210"),
        ("09876543210", "••••••••210"),  # trunk prefix
        ("919876543210", "•••••••••210"),  # country code without +
        ("0091 98765 43210", "•••••••••••210"),  # international prefix
        ("080-2345-6789", "••••••••789"),  # a landline with its STD code
        ("+1 415 555 0100", "+••••••••100"),  # E.164, another country
    ],
)
def test_phone_numbers_are_masked(said: str, shown: str) -> None:
    assert mask_phones(f"call from {said}, ok") == f"call from {shown}, ok"


@pytest.mark.parametrize(
    "text",
    [
        "call_sid=CAtest9876543210ab",  # digits inside an id
        "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",  # a UUID
        "created=1733570000.123",  # a Unix time
        "p=0.9876543210",  # a fraction
        "12345678901234567890",  # a longer number
        "5876543210",  # 10 digits, not a mobile (starts with 5)
        "9198•••••001",  # already masked
    ],
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert mask_phones(text) == text


def test_caller_number_in_message(lines: Any) -> None:
    log.info("call CA1 from %s", "+919876543210")
    assert lines()[0]["message"] == "call CA1 from +•••••••••210"


@pytest.mark.parametrize(
    ("name", "secret"),
    [("gemini", GEMINI), ("msg91", MSG91), ("exotel", EXOTEL), ("webhook", WEBHOOK)],
)
def test_secret_settings_are_masked(lines: Any, name: str, secret: str) -> None:
    log.warning("%s said no to %s", name, secret)
    [entry] = lines()
    assert secret not in json.dumps(entry) and entry["message"].endswith("[REDACTED]")


def test_secret_from_a_tenants_environment_variable(lines: Any) -> None:
    log.info("sending with tenant-own-msg91-key")
    assert "tenant-own-msg91-key" not in lines()[0]["message"]


def test_bearer_token(lines: Any) -> None:
    log.info("headers: {'Authorization': 'Bearer abc.def-ghi_jkl'}")
    assert lines()[0]["message"] == "headers: {'Authorization': 'Bearer [REDACTED]'}"


def test_url_with_credentials(lines: Any) -> None:
    log.error("cannot reach postgresql+asyncpg://app:s3cr3t-pw@db.example:5432/calls")
    msg = lines()[0]["message"]
    assert "s3cr3t-pw" not in msg and "postgresql+asyncpg://app:[REDACTED]@db.example" in msg


def test_key_in_a_query_string(lines: Any) -> None:
    log.info("GET https://host/v1beta/models?key=AIzaUnknownKey123&alt=sse")
    assert lines()[0]["message"] == "GET https://host/v1beta/models?key=[REDACTED]&alt=sse"


def test_our_own_api_key_keeps_its_prefix(lines: Any) -> None:
    log.info("bad key rk_0a1b2c3d_Zm9vYmFyYmF6cXV4cXV1eA")
    assert lines()[0]["message"] == "bad key rk_0a1b2c3d_[REDACTED]"


def test_secret_and_number_in_extra_fields(lines: Any) -> None:
    log.info("sent", extra={"request": {"to": ["+919876543210"], "authkey": MSG91}})
    [entry] = lines()
    assert entry["request"] == {"to": ["+•••••••••210"], "authkey": "[REDACTED]"}


def test_secret_inside_an_exception_message(lines: Any) -> None:
    try:
        raise RuntimeError(f"401 for key {GEMINI} calling +919876543210")
    except RuntimeError:
        log.exception("analysis failed")
    [entry] = lines()
    assert GEMINI not in entry["exception"] and "9876543210" not in entry["exception"]
    assert "RuntimeError: 401 for key [REDACTED] calling +•••••••••210" in entry["exception"]


def test_secret_inside_an_exception_in_text_mode(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(secrets=[GEMINI])
    try:
        raise ValueError(f"bad key {GEMINI}")
    except ValueError:
        log.exception("failed")
    logging.getLogger().handlers.clear()
    err = capsys.readouterr().err
    assert GEMINI not in err and "ValueError: bad key [REDACTED]" in err


def test_redaction_off_for_local_debugging(capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(_env_file=None, log_format="text", log_redact=False)
    configure_logging(settings)
    log.info("from +919876543210")
    logging.getLogger().handlers.clear()
    setup_logging()
    assert "from +919876543210" in capsys.readouterr().err


def test_secrets_in_environment_by_name() -> None:
    env = {
        "GEMINI_API_KEY": "g" * 20,
        "EXOTEL_API_TOKEN": "t" * 20,
        "MSG91_WEBHOOK_SECRET": "w" * 20,
        "EXOTEL_WS_PASSWORD": "p" * 20,
        "DATABASE_URL": "postgresql://u:dbpass123@h/db",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=vendorkey123,x-other=v2value",
        "TENANTS_DIR": "tenants",  # not a secret
    }
    found = set(secrets_in_environment(env))
    assert {"g" * 20, "t" * 20, "w" * 20, "p" * 20, "dbpass123", "vendorkey123"} <= found
    assert "tenants" not in found
    red = Redactor(found)
    assert red.text("dbpass123 and vendorkey123") == "[REDACTED] and [REDACTED]"


def test_short_values_are_not_treated_as_secrets() -> None:
    assert Redactor(["1", "true", "bt"]).text("true story, bt") == "true story, bt"
