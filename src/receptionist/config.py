"""Every knob in one place: environment variables (or a `.env` file), validated at start-up.

A wrong value stops the process with one line naming the variable (see `load_settings`).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_LIVE_MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"


class SettingsError(RuntimeError):
    """A setting is wrong. The message is one line that names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,  # `GEMINI_API_KEY=` left in a .env template means "unset"
    )

    # --- storage -------------------------------------------------------------------------------
    database_url: str = Field(
        "sqlite:///data/receptionist.db",
        description="SQLite file (default) or PostgreSQL/Supabase URL (postgresql://...).",
    )

    spool_dir: Path = Field(
        Path("data/spool"), description="Calls that could not be saved wait here for replay."
    )
    spool_replay_interval_s: float = Field(
        10.0, gt=0, description="How often a running server retries the spool while it has calls."
    )
    checkpoint_interval_s: float = Field(
        5.0,
        ge=0,
        description="How often live calls' transcripts and the server's heartbeat are saved"
        " (0: never; a killed server's calls then stay in progress).",
    )
    server_lost_after_s: float = Field(
        60.0, gt=0, description="A server whose heartbeat is this old is gone: its calls close."
    )
    reaper_interval_s: float = Field(
        30.0, gt=0, description="How often a server looks for calls of servers that are gone."
    )
    heap_trim_interval_s: float = Field(
        60.0,
        ge=0,
        description="How often a server or worker gives the C heap's free pages back to the"
        " system (glibc malloc_trim), so RSS stays at what is in use; 0: never.",
    )

    greeting_cache: bool = Field(
        True,
        description="Play each tenant's greeting from a cache of what the engine said for it"
        " (per tenant version, voice and rate) the moment a call starts.",
    )
    greeting_cache_dir: Path | None = Field(
        None, description="Where cached greetings are kept; default: `greetings` beside SPOOL_DIR."
    )
    greeting_cache_mb: float = Field(
        64.0, gt=0, description="Memory per process for cached greetings (least recent go)."
    )
    greeting_cache_max_s: float = Field(
        30.0, gt=0, le=120, description="Longer greetings are not cached."
    )

    # --- tenants -------------------------------------------------------------------------------
    tenants_dir: Path = Field(Path("tenants"), description="Folder of tenant folders.")
    tenants_source: Literal["folders", "database"] = Field(
        "folders",
        description="Where tenants are read: their folders (reloaded when a file changes), or "
        "the database (`tenants sync` imports folders; `serve` imports the folders of tenants "
        "the database does not have yet; every process sees a saved change within seconds).",
    )

    # --- Gemini --------------------------------------------------------------------------------
    gemini_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        description="Gemini API key (GOOGLE_API_KEY is accepted too).",
    )
    gemini_live_model: str = Field(DEFAULT_LIVE_MODEL, description="Live (native audio) model.")
    gemini_api_version: str = Field("v1beta", description="API version for the Live endpoint.")
    gemini_base_url: str | None = Field(
        None, description="Override the Gemini endpoint (https://host:port), e.g. the local double."
    )
    gemini_ca_file: Path | None = Field(
        None, description="Extra CA certificate (PEM) trusted for GEMINI_BASE_URL."
    )
    gemini_voice: str | None = Field(None, description="Default prebuilt voice (tenant overrides).")
    gemini_connect_timeout_s: float = Field(10.0, gt=0)
    # A dropped Live connection (or one closing after goAway) is replaced by a resumed session:
    gemini_reconnect_attempts: int = Field(
        4, ge=1, le=20, description="Tries to open a replacement Live session before giving up."
    )
    gemini_reconnect_deadline_s: float = Field(
        8.0, gt=0, le=60, description="Give up replacing a lost Live session after this long."
    )
    gemini_resume_buffer_s: float = Field(
        10.0, ge=0, le=60, description="Caller audio kept to replay into a replacement session."
    )

    # --- server --------------------------------------------------------------------------------
    host: str = "0.0.0.0"
    port: int = Field(8765, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="Server processes sharing the port.")
    keepalive_interval_s: float = Field(
        20.0, ge=0, description="WebSocket ping interval towards Exotel; 0 disables."
    )
    keepalive_timeout_s: float = Field(20.0, gt=0)
    # Graceful stop (bridge/drain.py). The defaults fit Kubernetes' 30 s between SIGTERM and
    # SIGKILL: 15 s for calls to end by themselves, 10 s for the goodbye, 5 s to save and exit.
    # Railway kills after 3 s unless RAILWAY_DEPLOYMENT_DRAINING_SECONDS is raised (to 30+).
    drain_timeout_s: float = Field(
        15.0, ge=0, description="On SIGTERM, calls in progress may go on this long."
    )
    drain_goodbye_s: float = Field(
        10.0, ge=0, description="Then the goodbye said to each call left may take this long."
    )
    # Admission control (bridge/admission.py): a saturated process refuses new calls in the
    # handshake. One process held 400 simulated calls in the bench (bench/results, 2026-12-07);
    # 300 keeps a quarter of headroom for real networks and engine bursts.
    max_calls_per_process: int = Field(
        300, ge=0, description="Calls one server process takes at most; 0: no limit."
    )
    admission_max_loop_lag_ms: float = Field(
        100.0, ge=0, description="Refuse new calls while the event loop is this late; 0: off."
    )

    # --- Exotel stream auth (Basic auth in the applet URL) ------------------------------------
    exotel_ws_user: str | None = Field(None, description="Global Basic-auth user (API key).")
    exotel_ws_password: SecretStr | None = Field(None, description="Global Basic-auth token.")

    # --- call limits ---------------------------------------------------------------------------
    max_frame_bytes: int = Field(262_144, ge=1024, description="Larger frames are dropped.")
    caller_audio_max_speed: float = Field(
        1.0,
        ge=0,
        description="Caller audio faster than this times real time (after a 2 s burst) is"
        " counted and dropped; 0: no limit (simulated callers that do not pace their audio).",
    )
    exotel_min_chunk_ms: int = Field(
        100,
        ge=20,
        le=1000,
        description="Least audio in a media frame we send to Exotel (its jitter margin); each"
        " answer's first frame waits for this much. 200: Exotel's 3,200 bytes read at 8 kHz.",
    )
    max_call_duration_s: float = Field(600.0, gt=0)
    silence_prompt_after_s: float = Field(60.0, gt=0, description="Ask 'are you there?' after.")
    silence_hangup_after_s: float = Field(90.0, gt=0, description="Say goodbye and hang up after.")
    speech_rms_threshold: float = Field(
        500.0, ge=0, description="Caller audio louder than this counts as activity."
    )
    tool_timeout_s: float = Field(
        2.0,
        gt=0,
        le=30,
        description="A tool the agent calls during a call (check_slot, book ...) that has not"
        " answered by then is answered 'taking too long' and recorded on the call.",
    )

    # --- Exotel REST API (call details after hang-up) ---------------------------------------
    exotel_account_sid: str | None = Field(None, description="Exotel account SID.")
    exotel_api_key: str | None = Field(None, description="Exotel API key.")
    exotel_api_token: SecretStr | None = Field(None, description="Exotel API token.")
    exotel_subdomain: str = Field("api.exotel.com", description="api.in.exotel.com for Mumbai.")
    exotel_api_base_url: str | None = Field(None, description="Override, e.g. the local double.")
    exotel_details_deadline_s: float = Field(
        900.0, gt=0, description="Stop waiting for Exotel's final record after this."
    )
    # --- hand-off to a person and AI callbacks (README: "Hand-off to a person", "Callbacks") ---
    exotel_connect_secret: SecretStr | None = Field(
        None, description="Key in the Connect applet's dynamic URL (?key=...); unset: refused."
    )
    callback_stream_url: str | None = Field(
        None,
        description="Our public WebSocket base for callbacks, e.g. wss://rx.example.com/exotel",
    )
    exotel_status_callback_url: str | None = Field(
        None, description="Our public https://.../exotel/status, for the calls we place."
    )

    # --- voice engine ----------------------------------------------------------------------------
    voice_engine: Literal["auto", "gemini-live", "local"] = Field(
        "auto", description="auto: gemini-live when a Gemini key is set, else local."
    )
    local_stt_model: str | None = Field(
        None,
        description="Whisper model directory, faster-whisper name, or 'whisper-base' "
        "(multilingual base, the local-base extra); default tiny.en.",
    )
    local_stt_threads: int = Field(2, ge=1, description="CPU threads per transcription.")
    local_tts_voice: str | None = Field(
        None, description="Piper voice .onnx (its .json beside it); default en_US joe."
    )
    # 500: Piper-voiced callers' pauses at a comma outlast 400 ms (their turns were cut there)
    local_end_silence_ms: int = Field(500, ge=100, description="Silence that ends a turn.")
    local_pause_ms: int = Field(
        240, ge=0, description="A pause this long starts transcribing the turn early (0: off)."
    )
    local_continue_ms: int = Field(
        700,
        ge=0,
        le=5000,
        description="A turn whose words stop mid-sentence (a comma, 'and', 'my number is') "
        "waits this much longer for the rest before it is answered.",
    )
    local_stt_window_s: float = Field(
        10.0,
        ge=0,
        le=30,
        description="Whisper encodes a window this long (or just longer than the turn) instead "
        "of 30 s: ~3x faster per turn, the same word error rate. 0: the full 30 s window.",
    )
    local_max_utterance_s: float = Field(15.0, ge=1, description="Longer turns are cut.")
    local_brain: Literal["grounded", "llm"] = Field(
        "grounded", description="grounded: answers from the tenant's files, no model."
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint for `llm`.")
    llm_model: str | None = Field(None, description="Model name at LLM_BASE_URL.")
    llm_api_key: SecretStr | None = Field(None, description="Key for LLM_BASE_URL, if any.")
    llm_gguf_path: Path | None = Field(
        None, description="A GGUF file run in-process (xllamacpp) instead of an endpoint."
    )
    llm_first_token_timeout_s: float = Field(3.0, gt=0)
    llm_total_timeout_s: float = Field(8.0, gt=0)

    # --- post-call analysis ------------------------------------------------------------------
    analyzer: Literal["auto", "gemini", "offline"] = Field(
        "auto", description="auto: Gemini when a key is set, else the offline analyzer."
    )
    gemini_analysis_model: str = Field("gemini-2.5-flash", description="Model for analysis.")
    gemini_analysis_base_url: str | None = Field(
        None, description="Override the generateContent endpoint (e.g. the local double)."
    )

    # --- post-call pipeline ------------------------------------------------------------------
    run_worker: bool = Field(True, description="`serve` runs a pipeline worker in-process.")
    pipeline_max_attempts: int = Field(5, ge=1, description="Tries per step before `failed`.")
    pipeline_lease_s: float = Field(120.0, gt=0, description="A dead worker's claim expires.")
    pipeline_backoff_s: float = Field(5.0, gt=0, description="First retry delay (doubles).")
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, /metrics (and the worker's metrics port) answers only requests "
        "with `Authorization: Bearer <token>`: the metrics name tenants and their costs.",
    )
    worker_metrics_port: int = Field(
        0, ge=0, le=65535, description="`receptionist worker` serves /metrics here (0: off)."
    )
    pricing_file: Path | None = Field(None, description="Own pricing table (TOML).")
    usd_inr_rate: Decimal = Field(Decimal("84"), gt=0, description="For costs shown in INR.")

    # --- call recordings (tenants with [recording] enabled = true) -----------------------------
    recordings_spool_dir: Path = Field(
        Path("data/recordings/raw"),
        description="Raw tapes of calls being recorded, on the serving machine's own disk.",
    )
    recording_store: Literal["local", "s3"] = Field(
        "local", description="Where encoded recordings are kept: a local folder or an S3 bucket."
    )
    recordings_dir: Path = Field(
        Path("data/recordings/store"), description="The local store's folder."
    )
    recording_format: Literal["opus", "mp3"] = Field(
        "opus", description="Stereo Ogg/Opus (small) or MP3 (plays everywhere)."
    )
    recording_s3_bucket: str | None = Field(None, description="The bucket (RECORDING_STORE=s3).")
    recording_s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (R2, Supabase Storage, MinIO); unset: AWS."
    )
    recording_s3_region: str | None = Field(None, description="Region; unset: `auto`.")
    recording_s3_prefix: str = Field("", description="Key prefix inside the bucket.")
    recording_s3_access_key_id: str | None = Field(None, description="Access key id.")
    recording_s3_secret_access_key: SecretStr | None = Field(None, description="Secret key.")
    recording_max_attempts: int = Field(
        8, ge=1, description="Uploads tried before a recording is marked failed."
    )
    recording_backoff_s: float = Field(30.0, gt=0, description="First upload retry delay.")

    # --- WhatsApp messages after calls --------------------------------------------------------
    notify_provider: Literal["auto", "log", "msg91"] = Field(
        "auto", description="auto: MSG91 when MSG91_AUTH_KEY is set, else log (nothing leaves)."
    )
    msg91_auth_key: SecretStr | None = Field(None, description="MSG91 auth key.")
    msg91_integrated_number: str | None = Field(
        None, description="Default WhatsApp sender number (digits with country code)."
    )
    msg91_base_url: str = Field("https://api.msg91.com", description="Override, e.g. the double.")
    msg91_timeout_s: float = Field(10.0, gt=0, description="Wait for MSG91's answer this long.")
    msg91_webhook_secret: SecretStr | None = Field(
        None, description="Shared secret the delivery webhook must present."
    )
    notify_ai: Literal["auto", "off"] = Field(
        "auto", description="auto: Gemini writes `write` variables when a key is set."
    )
    notify_max_attempts: int = Field(5, ge=1, description="Sends tried before `failed`.")
    notify_backoff_s: float = Field(5.0, gt=0, description="First resend delay (doubles).")
    notify_concurrency: int = Field(8, ge=1, description="Messages in flight per process.")
    notify_confirm_window_s: float = Field(
        600.0,
        ge=0,
        description="An ambiguous send with no delivery report after this is sent again; "
        "0 leaves it `unknown` for a person.",
    )

    # --- operations ----------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = Field(False, description="One JSON object per log line.")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="json: one JSON object per line; text: for people; auto: text when stderr"
        " is a terminal, json otherwise (or when LOG_JSON is set).",
    )
    log_redact: bool = Field(
        True, description="Mask phone numbers and secrets in logs and traces; 0 to debug locally."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v

    @property
    def gemini_key(self) -> str | None:
        return self.gemini_api_key.get_secret_value() if self.gemini_api_key else None

    @property
    def exotel_auth(self) -> tuple[str, str] | None:
        if self.exotel_ws_user and self.exotel_ws_password:
            return self.exotel_ws_user, self.exotel_ws_password.get_secret_value()
        return None


def _env_name(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "?"
    field = Settings.model_fields.get(name)
    alias = field.validation_alias if field else None
    if isinstance(alias, AliasChoices):
        return " or ".join(str(c) for c in alias.choices)
    return name.upper()


def load_settings(**overrides: object) -> Settings:
    """Read the settings; raise SettingsError with one clear line on the first bad value."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {str(value)[:60]!r})"
        raise SettingsError(f"setting {_env_name(err['loc'])}: {err['msg']}{shown}") from None
    if settings.silence_hangup_after_s <= settings.silence_prompt_after_s:
        raise SettingsError(
            "setting SILENCE_HANGUP_AFTER_S: must be greater than SILENCE_PROMPT_AFTER_S"
        )
    if bool(settings.exotel_ws_user) != bool(settings.exotel_ws_password):
        raise SettingsError("setting EXOTEL_WS_USER/EXOTEL_WS_PASSWORD: set both or neither")
    exotel = (settings.exotel_account_sid, settings.exotel_api_key, settings.exotel_api_token)
    if any(exotel) and not all(exotel):
        raise SettingsError(
            "setting EXOTEL_ACCOUNT_SID/EXOTEL_API_KEY/EXOTEL_API_TOKEN: set all three or none"
        )
    if settings.recording_store == "s3" and not settings.recording_s3_bucket:
        raise SettingsError("setting RECORDING_S3_BUCKET: needed when RECORDING_STORE=s3")
    if settings.pricing_file and not settings.pricing_file.is_file():
        raise SettingsError(f"setting PRICING_FILE: no such file {settings.pricing_file}")
    if settings.gemini_ca_file and not settings.gemini_ca_file.is_file():
        raise SettingsError(f"setting GEMINI_CA_FILE: no such file {settings.gemini_ca_file}")
    return settings
