"""`serve` warns when DATABASE_URL is a transaction-mode pooler: the live view's LISTEN needs a
session-mode connection."""

from __future__ import annotations

import pytest

from receptionist.cli.common import through_transaction_pooler


@pytest.mark.parametrize(
    ("url", "pooler"),
    [
        ("postgresql://u:p@aws-0-ap-south-1.pooler.supabase.com:6543/postgres", True),
        ("postgres://u:p@db.example.supabase.co:5432/postgres?pgbouncer=true", True),
        ("postgresql://u:p@host/db?pgbouncer=TRUE&sslmode=require", True),
        ("postgresql://u:p@aws-0-ap-south-1.pooler.supabase.com:5432/postgres", False),
        ("postgresql://u:p@db.example.supabase.co/postgres", False),
        ("sqlite:///data/receptionist.db", False),
        ("sqlite:///6543", False),
        ("not a url", False),
    ],
)
def test_transaction_pooler_urls(url: str, pooler: bool) -> None:
    assert through_transaction_pooler(url) is pooler
