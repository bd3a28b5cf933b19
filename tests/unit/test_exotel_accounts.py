"""Which Exotel account and stream credentials a tenant's callbacks use (exotel_accounts.py)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from receptionist.config import load_settings
from receptionist.exotel_accounts import UNSET, rest_config, stream_credentials, with_credentials
from receptionist.tenants.loading import load_tenant
from tests.unit.test_tenants import MINIMAL_TOML, make_tenant

OWN = '[exotel]\nauth_user_env = "SHOP_KEY"\nauth_token_env = "SHOP_TOKEN"\naccount_sid = "shop1"\n'


def test_credentials_go_in_the_user_info_escaped() -> None:
    url = with_credentials(
        "wss://old:pw@rx.example.com:8443/exotel/shop?callback=t", ("k@y", "t:/#")
    )
    parts = urlsplit(url)
    assert (unquote(parts.username or ""), unquote(parts.password or "")) == ("k@y", "t:/#")
    assert (parts.hostname, parts.port, parts.path) == ("rx.example.com", 8443, "/exotel/shop")
    assert parts.query == "callback=t"
    assert with_credentials("ws://h/x", None) == "ws://h/x"


def test_a_tenant_with_its_own_account(tmp_path: Path) -> None:
    make_tenant(tmp_path, "shop", MINIMAL_TOML + OWN)
    tenant, problems = load_tenant(tmp_path, "shop")
    assert problems == [] and tenant is not None
    settings = load_settings(
        exotel_account_sid="ACserver", exotel_api_key="sk", exotel_api_token="st",
        exotel_ws_user="su", exotel_ws_password="sp",
    )  # fmt: skip
    env = {"SHOP_KEY": "k", "SHOP_TOKEN": "t"}
    cfg = rest_config(settings, tenant, env)
    assert cfg is not None and (cfg.account_sid, cfg.api_key, cfg.api_token) == ("shop1", "k", "t")
    assert stream_credentials(settings, tenant, env) == ("k", "t")
    # its variables unset: no account at all (never the server's), and no stream accepted
    assert rest_config(settings, tenant, {}) is None
    assert stream_credentials(settings, tenant, {}) == UNSET


def test_a_tenant_sharing_the_servers_account(tmp_path: Path) -> None:
    make_tenant(tmp_path, "shop", MINIMAL_TOML)
    tenant, _ = load_tenant(tmp_path, "shop")
    assert tenant is not None
    settings = load_settings(
        exotel_account_sid="ACserver", exotel_api_key="sk", exotel_api_token="st",
        exotel_ws_user="su", exotel_ws_password="sp",
    )  # fmt: skip
    cfg = rest_config(settings, tenant, {})
    assert cfg is not None and cfg.account_sid == "ACserver"
    assert stream_credentials(settings, tenant, {}) == ("su", "sp")
