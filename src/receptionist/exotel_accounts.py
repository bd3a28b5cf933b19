"""Which Exotel account a tenant's calls belong to, in one place for the bridge and the callbacks.

A tenant may have its own Exotel account (tenant.toml `[exotel]`: `auth_user_env` and
`auth_token_env` name the environment variables holding its API key and token, `account_sid`
names the account); otherwise it shares the server's (EXOTEL_WS_USER/EXOTEL_WS_PASSWORD for the
streams, EXOTEL_ACCOUNT_SID/EXOTEL_API_KEY/EXOTEL_API_TOKEN for the REST API).

* :func:`stream_credentials`: the Basic auth the bridge expects on the tenant's streams (Exotel
  sends the user info of the stream URL as ``Authorization: Basic``, PROTOCOLS.md).
* :func:`rest_config`: the account a callback for the tenant is dialled through, and whose
  call records are read for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import quote, urlsplit, urlunsplit

from receptionist.config import Settings
from receptionist.telephony.exotel_api import ExotelApiConfig, api_config
from receptionist.tenants.model import Tenant

__all__ = ["UNSET", "rest_config", "stream_credentials", "with_credentials"]

# a tenant naming variables that are not set: matches no request (fail closed)
UNSET = ("", "\x00unset")


def _own(tenant: Tenant | None, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The tenant's own key and token; UNSET when it names variables that are not set; None
    when it names none (it shares the server's)."""
    if tenant is None or not (tenant.exotel_auth_user_env and tenant.exotel_auth_token_env):
        return None
    user = environ.get(tenant.exotel_auth_user_env)
    token = environ.get(tenant.exotel_auth_token_env)
    return (user, token) if user and token else UNSET


def stream_credentials(
    settings: Settings, tenant: Tenant | None, environ: Mapping[str, str] = os.environ
) -> tuple[str, str] | None:
    """The Basic auth a stream for ``tenant`` must carry; None: the bridge checks none."""
    own = _own(tenant, environ)
    return own if own is not None else settings.exotel_auth


def rest_config(
    settings: Settings, tenant: Tenant, environ: Mapping[str, str] = os.environ
) -> ExotelApiConfig | None:
    """The Exotel account the tenant's callbacks are dialled through: its own when it names one
    (`[exotel] account_sid` with its key and token), else the server's; None without one, or
    when the tenant names key and token variables that are not set (its streams could not be
    authenticated: bridge/app.py refuses them too)."""
    shared = api_config(settings)
    own = _own(tenant, environ)
    if own == UNSET:  # its own key and token are named but not set: it cannot call anyone
        return None
    if own is None or not tenant.exotel_account_sid:
        return shared
    base = shared or ExotelApiConfig(
        "", "", "", subdomain=settings.exotel_subdomain, base_url=settings.exotel_api_base_url
    )
    return replace(base, account_sid=tenant.exotel_account_sid, api_key=own[0], api_token=own[1])


def with_credentials(url: str, credentials: tuple[str, str] | None) -> str:
    """``url`` with ``credentials`` as its user info (replacing any it had), the way Exotel is
    told the Basic auth of a stream; unchanged without credentials."""
    if credentials is None:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = f"{quote(credentials[0], safe='')}:{quote(credentials[1], safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
