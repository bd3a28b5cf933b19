"""The ActionService: which messages a call causes, composed and written down before any is sent.

For an analysed call it walks the tenant's rules for the call type, checks their conditions,
finds each recipient's number, fills the template (facts from the analysis, free text by the AI)
and returns one `notifications` row per message. The pipeline inserts them in the same
transaction that moves the call on, so each message is decided exactly once; the dispatcher
(notify/dispatcher.py) sends them afterwards.

A message that cannot go out is still a row (status `skipped`, with the reason): a withheld
caller number skips the customer's confirmation, never the owner's alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from receptionist.notify.compose import CallFacts, MessageWriter, MissingDetail, compose
from receptionist.notify.phones import InvalidPhone, normalise_phone
from receptionist.store.notifications import NewNotification
from receptionist.store.schema import NOTIFY_QUEUED, NOTIFY_SKIPPED
from receptionist.tenants.actions import ActionRule
from receptionist.tenants.model import Tenant
from receptionist.usage import TokenUsage

log = logging.getLogger("receptionist.actions")


@dataclass(frozen=True)
class ActionDeps:
    provider: str  # name of the provider the messages will go through ("log", "msg91")
    writer: MessageWriter | None  # None: AI-written parts use their static fallback
    default_region: str = "IN"  # for numbers given without a country code


def call_facts(row: dict[str, Any]) -> CallFacts:
    details = dict(row.get("critical_call_details") or {})
    return CallFacts(
        call_sid=row["call_sid"],
        call_type=row.get("call_type") or "",
        summary=row.get("summary") or "",
        details={k: v for k, v in details.items() if not k.startswith("_")},
        caller=row.get("from_number"),
        started_at=row.get("started_at") or row.get("created_at"),
    )


def rule_applies(rule: ActionRule, details: dict[str, Any]) -> bool:
    def present(name: str) -> bool:
        value = details.get(name)
        return value not in (None, "", [], {})

    if not all(present(f) for f in rule.when_present):
        return False
    for name, expected in rule.when_equals:
        value = details.get(name)
        if isinstance(value, bool):
            value = "true" if value else "false"
        if value is None or str(value).strip().lower() != expected.strip().lower():
            return False
    return True


def _recipient(rule: ActionRule, tenant: Tenant, facts: CallFacts, region: str) -> tuple[str, str]:
    """(recipient type, number digits); raises InvalidPhone with the reason."""
    if rule.to == "customer":
        return "customer", normalise_phone(facts.caller, region)
    if rule.to == "owner":
        return "owner", normalise_phone(tenant.owner_phone, region)
    return "fixed", normalise_phone(rule.to, region)


async def decide_messages(
    tenant: Tenant, row: dict[str, Any], deps: ActionDeps
) -> tuple[list[NewNotification], list[TokenUsage]]:
    """The call's messages (queued or skipped) and the AI tokens spent writing them."""
    facts = call_facts(row)
    rules = [r for r in tenant.actions_for(facts.call_type) if rule_applies(r, facts.details)]
    results = await asyncio.gather(*(_one(tenant, facts, r, deps) for r in rules))
    rows = list(_unique(r for r, _ in results))
    usage = _merge_usage([u for _, u in results if u is not None])
    return rows, usage


async def _one(
    tenant: Tenant, facts: CallFacts, rule: ActionRule, deps: ActionDeps
) -> tuple[NewNotification, TokenUsage | None]:
    row = _RowMaker(tenant, facts, rule, deps)
    template = tenant.template(rule.template)
    if template is None:  # validation makes this impossible; keep the message visible anyway
        return row.skipped("template not declared"), None
    row.language = template.language
    try:
        row.kind, row.number = _recipient(rule, tenant, facts, deps.default_region)
    except InvalidPhone as exc:
        return row.skipped(f"not sent to the {row.kind}: {exc.reason}"), None
    try:
        composed = await compose(rule, template, tenant, facts, deps.writer)
    except MissingDetail as exc:
        return row.skipped(str(exc)), None
    payload = message_payload(tenant, composed.values)
    details = {"text": composed.text, **composed.notes}
    return row.make(NOTIFY_QUEUED, payload, details), composed.usage


def message_payload(tenant: Tenant, values: list[str]) -> dict[str, Any]:
    """What the provider needs for one template message: its variables and the tenant's own
    WhatsApp sender (unset fields: the server's)."""
    sender = tenant.whatsapp
    return {
        "variables": values,
        "integrated_number": sender.integrated_number if sender else None,
        "namespace": sender.namespace if sender else None,
        "auth_key_env": sender.auth_key_env if sender else None,
    }


def idempotency_key(call_sid: str, rule: ActionRule) -> str:
    """One message per (call, recipient, template), however often the step runs."""
    return f"{call_sid}:{rule.to}:{rule.template}"


class _RowMaker:
    """What one rule's notifications row is made of, filled in as the rule is worked out."""

    def __init__(self, tenant: Tenant, facts: CallFacts, rule: ActionRule, deps: ActionDeps):
        self.tenant, self.facts, self.rule, self.deps = tenant, facts, rule, deps
        self.kind = rule.to if rule.to in ("customer", "owner") else "fixed"
        self.number: str | None = None
        self.language = ""

    def skipped(self, reason: str) -> NewNotification:
        log.warning("call %s: message %s skipped: %s", self.facts.call_sid, self.rule.key, reason)
        details = {"raw_number": self.facts.caller} if self.kind == "customer" else {}
        return self.make(NOTIFY_SKIPPED, {}, details, error=reason)

    def make(
        self,
        status: str,
        payload: dict[str, Any],
        details: dict[str, Any],
        error: str | None = None,
    ) -> NewNotification:
        return NewNotification(
            call_sid=self.facts.call_sid,
            tenant=self.tenant.tenant_id,
            idempotency_key=idempotency_key(self.facts.call_sid, self.rule),
            recipient=self.number,
            recipient_type=self.kind,
            message_type=self.facts.call_type,
            template_name=self.rule.template,
            language=self.language,
            status=status,
            provider=self.deps.provider,
            payload=payload,
            details=details,
            error=error,
            urgent=self.rule.urgent,
        )


def _unique(rows: Any) -> Any:
    seen: set[str] = set()
    for r in rows:
        if r.idempotency_key not in seen:
            seen.add(r.idempotency_key)
            yield r


def _merge_usage(usage: Sequence[TokenUsage]) -> list[TokenUsage]:
    """One usage row per model for the purpose `message` (the table keeps one per call)."""
    merged: dict[str, TokenUsage] = {}
    for u in usage:
        m = merged.get(u.model_name)
        merged[u.model_name] = u if m is None else m + u
    return list(merged.values())
