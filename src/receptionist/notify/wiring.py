"""Builds the messaging side from settings: provider, AI writer, action deps, dispatcher."""

from __future__ import annotations

import logging

from receptionist.config import Settings, SettingsError
from receptionist.gemini_rest import make_client
from receptionist.notify.actions import ActionDeps
from receptionist.notify.compose import GeminiMessageWriter, MessageWriter
from receptionist.notify.dispatcher import Dispatcher
from receptionist.notify.log_provider import LogProvider
from receptionist.notify.provider import Provider
from receptionist.store.db import Database
from receptionist.store.notifications import StatusEvents

log = logging.getLogger("receptionist.notify")


def choose_provider(settings: Settings) -> Provider:
    """MSG91 when its key is set (or asked for), else the log provider: nothing leaves."""
    key = settings.msg91_auth_key.get_secret_value() if settings.msg91_auth_key else None
    if settings.notify_provider == "log" or (settings.notify_provider == "auto" and not key):
        log.info("WhatsApp messages: log provider (stored and logged, not sent)")
        return LogProvider()
    if not key:
        raise SettingsError("setting NOTIFY_PROVIDER: `msg91` needs MSG91_AUTH_KEY")
    from receptionist.notify.msg91 import Msg91Config, Msg91Provider

    log.info("WhatsApp messages: MSG91 at %s", settings.msg91_base_url)
    return Msg91Provider(
        Msg91Config(
            auth_key=key,
            integrated_number=settings.msg91_integrated_number,
            base_url=settings.msg91_base_url,
            timeout_s=settings.msg91_timeout_s,
        )
    )


def choose_writer(settings: Settings) -> MessageWriter | None:
    """Gemini writes the free-text parts when a key is set; otherwise the static fallbacks."""
    key = settings.gemini_key
    if settings.notify_ai == "off" or not key:
        return None
    client = make_client(key, base_url=settings.gemini_analysis_base_url)
    return GeminiMessageWriter(client, settings.gemini_analysis_model)


def action_deps(settings: Settings, provider: Provider) -> ActionDeps:
    return ActionDeps(provider=provider.name, writer=choose_writer(settings))


def make_dispatcher(
    settings: Settings,
    db: Database,
    provider: Provider,
    *,
    worker_id: str,
    events: StatusEvents | None = None,
) -> Dispatcher:
    # Re-sending after the provider's silence is only sound when its reports reach us.
    confirm = settings.notify_confirm_window_s if settings.msg91_webhook_secret else 0.0
    return Dispatcher(
        db,
        provider,
        worker_id=worker_id,
        lease_s=settings.pipeline_lease_s,
        max_attempts=settings.notify_max_attempts,
        backoff_base_s=settings.notify_backoff_s,
        concurrency=settings.notify_concurrency,
        confirm_window_s=confirm,
        events=events,
    )
