"""Checks of tenant.toml's `[[webhooks]]`: the business's own URLs that receive call events."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from .actions import WEBHOOK_EVENTS, Webhook
from .report import Report, is_env_name, suggest
from .toml_lines import item_key

MAX_WEBHOOKS = 5
MAX_URL = 2048
_LOOPBACK_NAMES = {"localhost"}


def _loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why `url` cannot receive webhooks, or None. https only (plain http only to this machine,
    for trying things out); no user or password in it."""
    if len(url) > MAX_URL or any(c.isspace() for c in url):
        return "must be one URL without spaces, at most 2048 characters"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        return 'must start with https:// and name a host (e.g. "https://example.com/hooks")'
    if parts.scheme == "http" and not _loopback(host):
        return "must use https:// (plain http only to this machine: localhost, 127.0.0.1)"
    if parts.username or parts.password:
        return "must not carry a user or password: the requests are signed instead (secret_env)"
    return None


def check_webhooks(r: Report, config: dict[str, Any]) -> tuple[Webhook, ...]:
    items = config.get("webhooks")
    if items is None:
        return ()
    if not isinstance(items, list):
        r.add_config(("webhooks",), "webhooks must be written as [[webhooks]] tables")
        return ()
    if len(items) > MAX_WEBHOOKS:
        r.add_config(("webhooks",), f"at most {MAX_WEBHOOKS} [[webhooks]]")
    out: list[Webhook] = []
    for i, item in enumerate(items[:MAX_WEBHOOKS]):
        path = ("webhooks", item_key(i))
        if not isinstance(item, dict):
            r.add_config(path, "each [[webhooks]] must be a table with url and secret_env")
            continue
        r.check_shape(path)
        before = len(r.problems)
        url = r.text_value(item, "url", path)
        if url is not None and (why := url_problem(url)):
            r.add_config((*path, "url"), f"webhooks url {why}; got {url[:80]!r}")
        secret_env = r.text_value(item, "secret_env", path)
        if secret_env is not None and not is_env_name(secret_env):
            r.add_config(
                (*path, "secret_env"),
                "webhooks secret_env must NAME an environment variable holding the secret "
                f'(e.g. "BAKERY_WEBHOOK_SECRET"), never the secret itself; got {secret_env[:40]!r}',
            )
        events = item.get("events", list(WEBHOOK_EVENTS))
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            r.add_config((*path, "events"), "webhooks events must be a list of names in quotes")
            events = []
        for event in events:
            if event not in WEBHOOK_EVENTS:
                r.add_config(
                    (*path, "events"),
                    f"unknown event {event!r}{suggest(event, WEBHOOK_EVENTS)} "
                    f"(one of {', '.join(WEBHOOK_EVENTS)})",
                )
        if len(r.problems) == before and url is not None and secret_env is not None:
            out.append(Webhook(url=url, secret_env=secret_env, events=tuple(dict.fromkeys(events))))
    return tuple(out)
