"""Settings: defaults, environment variables, one-line errors naming the variable, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from receptionist.config import DEFAULT_LIVE_MODEL, Settings, SettingsError, load_settings

SECRET = "AIzaSy-test-secret-do-not-print-0123456789"
PASSWORD = "exotel-token-secret-9876"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No developer `.env` and no inherited variable may leak into these tests."""
    monkeypatch.chdir(tmp_path)
    names = {name.upper() for name in Settings.model_fields} | {"GEMINI_API_KEY", "GOOGLE_API_KEY"}
    for name in names:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return tmp_path


def test_defaults() -> None:
    s = load_settings()
    assert s.port == 8765
    assert s.host == "0.0.0.0"
    assert s.database_url == "sqlite:///data/receptionist.db"
    assert s.database_url.startswith("sqlite:")
    assert s.gemini_key is None
    assert s.gemini_live_model == DEFAULT_LIVE_MODEL
    assert s.log_level == "INFO"
    assert s.log_json is False
    assert s.exotel_auth is None
    assert s.gemini_ca_file is None
    assert s.silence_hangup_after_s > s.silence_prompt_after_s
    assert s.workers == 1


def test_env_vars_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/receptionist")
    monkeypatch.setenv("LOG_LEVEL", "debug")  # case-insensitive value
    monkeypatch.setenv("LOG_JSON", "true")
    monkeypatch.setenv("MAX_CALL_DURATION_S", "300.5")
    monkeypatch.setenv("GEMINI_LIVE_MODEL", "gemini-live-test")
    monkeypatch.setenv("TENANTS_DIR", "/srv/tenants")
    s = load_settings()
    assert s.port == 9000
    assert s.host == "127.0.0.1"
    assert s.database_url == "postgresql://u:p@db/receptionist"
    assert s.log_level == "DEBUG"
    assert s.log_json is True
    assert s.max_call_duration_s == 300.5
    assert s.gemini_live_model == "gemini-live-test"
    assert s.tenants_dir == Path("/srv/tenants")


def test_lower_case_env_names_work_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("port", "9001")
    assert load_settings().port == 9001


def test_dotenv_file_in_working_directory_is_read(clean_env: Path) -> None:
    (clean_env / ".env").write_text("PORT=9100\nLOG_LEVEL=warning\n", encoding="utf-8")
    s = load_settings()
    assert (s.port, s.log_level) == (9100, "WARNING")


def test_env_var_beats_dotenv(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    (clean_env / ".env").write_text("PORT=9100\n", encoding="utf-8")
    monkeypatch.setenv("PORT", "9200")
    assert load_settings().port == 9200


def test_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    assert load_settings(port=9300).port == 9300


def test_gemini_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    assert load_settings().gemini_key == SECRET


def test_google_api_key_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    assert load_settings().gemini_key == "google-key"


def test_gemini_api_key_preferred_over_google(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key")
    assert load_settings().gemini_key == "gemini-key"


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("PORT", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("MAX_CALL_DURATION_S", "-1"),
        ("MAX_CALL_DURATION_S", "0"),
        ("WORKERS", "0"),
        ("LOG_JSON", "sometimes"),
        ("MAX_FRAME_BYTES", "10"),
        ("GEMINI_CONNECT_TIMEOUT_S", "soon"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    msg = str(info.value)
    assert "\n" not in msg
    assert env in msg
    assert value in msg  # shows what it got


def test_bad_value_with_newline_stays_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "80\n80")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "\n" not in str(info.value)
    assert "PORT" in str(info.value)


def test_settings_error_is_not_a_traceback_of_pydantic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "abc")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize(("prompt", "hangup"), [("60", "60"), ("60", "30"), ("90", "89.9")])
def test_hangup_must_come_after_prompt(
    monkeypatch: pytest.MonkeyPatch, prompt: str, hangup: str
) -> None:
    monkeypatch.setenv("SILENCE_PROMPT_AFTER_S", prompt)
    monkeypatch.setenv("SILENCE_HANGUP_AFTER_S", hangup)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "SILENCE_HANGUP_AFTER_S" in str(info.value)
    assert "\n" not in str(info.value)


def test_hangup_after_prompt_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILENCE_PROMPT_AFTER_S", "10")
    monkeypatch.setenv("SILENCE_HANGUP_AFTER_S", "20")
    s = load_settings()
    assert (s.silence_prompt_after_s, s.silence_hangup_after_s) == (10, 20)


@pytest.mark.parametrize(
    "env",
    [{"EXOTEL_WS_USER": "key"}, {"EXOTEL_WS_PASSWORD": PASSWORD}],
)
def test_exotel_auth_needs_both(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError) as info:
        load_settings()
    msg = str(info.value)
    assert "EXOTEL_WS_USER" in msg
    assert "EXOTEL_WS_PASSWORD" in msg
    assert PASSWORD not in msg


def test_exotel_auth_both_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOTEL_WS_USER", "key")
    monkeypatch.setenv("EXOTEL_WS_PASSWORD", PASSWORD)
    assert load_settings().exotel_auth == ("key", PASSWORD)


def test_gemini_ca_file_must_exist(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    missing = clean_env / "nope.pem"
    monkeypatch.setenv("GEMINI_CA_FILE", str(missing))
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "GEMINI_CA_FILE" in str(info.value)
    assert "\n" not in str(info.value)


def test_gemini_ca_file_directory_refused(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    monkeypatch.setenv("GEMINI_CA_FILE", str(clean_env))
    with pytest.raises(SettingsError, match="GEMINI_CA_FILE"):
        load_settings()


def test_gemini_ca_file_present(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    ca = clean_env / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    monkeypatch.setenv("GEMINI_CA_FILE", str(ca))
    assert load_settings().gemini_ca_file == ca


def test_secrets_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    monkeypatch.setenv("EXOTEL_WS_USER", "key")
    monkeypatch.setenv("EXOTEL_WS_PASSWORD", PASSWORD)
    s = load_settings()
    for text in (repr(s), str(s), f"{s}", repr(s.gemini_api_key), str(s.model_dump())):
        assert SECRET not in text
        assert PASSWORD not in text
    assert s.gemini_key == SECRET


def test_secret_not_in_error_about_another_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    monkeypatch.setenv("PORT", "abc")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert SECRET not in str(info.value)


def test_empty_gemini_api_key_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "")
    assert load_settings().gemini_key is None


def test_empty_gemini_key_falls_back_to_google_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "")
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    assert load_settings().gemini_key == "google-key"
