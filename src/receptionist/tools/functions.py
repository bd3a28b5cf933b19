"""The tools themselves: check_slot, book, quote, order_status, handoff.

Each takes the call's ToolContext and the model's arguments (a dict, not yet trusted) and returns
a small dict the model can say; bad arguments raise ToolArgsError with the polite reason.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from receptionist.engines.local.knowledge import Knowledge, OrderLine, knowledge_for
from receptionist.gcal.busy import BusyTimes, CalendarUnavailable, busy_times
from receptionist.store import bookings as store
from receptionist.tenants.tool_checks import BookingSettings
from receptionist.tools.runner import HandoffRequest, ToolArgsError, ToolContext, ToolFn
from receptionist.tools.slots import BadSlot, Slot, check_slot, parse_date, parse_time, slots_from

MAX_TEXT = 120
MAX_ITEMS = 20
MAX_OPTIONS = 5
ALTERNATIVES = 3


def _text(args: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = args.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ToolArgsError(f"'{key}' is missing")
        return None
    if not isinstance(value, str):
        raise ToolArgsError(f"'{key}' must be text")
    value = value.replace("\x00", "").strip()
    if len(value) > MAX_TEXT:
        raise ToolArgsError(f"'{key}' is too long")
    return value


def _booking(ctx: ToolContext) -> BookingSettings:
    settings = ctx.tenant.tools.booking
    if settings is None:  # check_slot/book enabled always come with settings (tool_checks)
        raise ToolArgsError("this business takes no appointments")
    return settings


def _resource(settings: BookingSettings, asked: str | None) -> str | None:
    """The resource asked for, as configured; None: anyone."""
    if asked is None or asked.lower() in ("any", "anyone", "anybody"):
        return None
    for name in settings.resources:
        if name.lower() == asked.lower():
            return name
    raise ToolArgsError(f"nobody called {asked!r} here; we have {', '.join(settings.resources)}")


def _slot(ctx: ToolContext, args: dict[str, Any]) -> tuple[BookingSettings, Slot, str | None]:
    settings = _booking(ctx)
    day_text = _text(args, "date", required=True)
    time_text = _text(args, "time", required=True)
    assert day_text is not None and time_text is not None
    now_local = ctx.clock().astimezone(ctx.zone)
    try:
        day, at = parse_date(day_text, now_local.date()), parse_time(time_text)
        slot = check_slot(settings, ctx.zone, day, at)
    except BadSlot as exc:
        raise ToolArgsError(str(exc)) from None
    if slot.start <= now_local:
        raise ToolArgsError("that time has passed")
    if slot.start.date() > now_local.date() + timedelta(days=settings.max_days_ahead):
        raise ToolArgsError(f"we book at most {settings.max_days_ahead} days ahead")
    return settings, slot, _resource(settings, _text(args, "resource"))


HORIZON = timedelta(days=7)  # how far after the slot asked for the alternatives go
CALENDAR_NOTE = "the owner's calendar could not be read just now: this is from our bookings only"


class _NoCalendar:
    def blocks(self, resource: str, start: datetime, end: datetime) -> bool:
        return False


async def _owner_busy(
    ctx: ToolContext, settings: BookingSettings, slot: Slot
) -> tuple[BusyTimes | _NoCalendar, str | None]:
    """The owner's own events ([booking.google_calendar] block_busy), and a note for the model
    when the calendar could not be read in time (the answer is then our database's alone)."""
    calendar = settings.google_calendar
    if calendar is None or not calendar.block_busy:
        return _NoCalendar(), None
    try:
        busy = await busy_times(
            ctx.tenant.tenant_id, calendar, slot.utc_start, slot.utc_start + HORIZON, ctx.zone
        )
    except CalendarUnavailable as exc:
        ctx.notes.append(f"calendar: {exc}")
        return _NoCalendar(), CALENDAR_NOTE
    return busy, None


def _open_for(busy: BusyTimes | _NoCalendar, taken: store.Taken, r: str, s: Slot) -> bool:
    """No booking of ours overlaps the slot (one made on an older grid may start elsewhere),
    nor an event of the owner's own."""
    return not taken.blocks(r, s.utc_start, s.utc_end) and not busy.blocks(
        r, s.utc_start, s.utc_end
    )


async def _free(
    ctx: ToolContext,
    settings: BookingSettings,
    slot: Slot,
    resource: str | None,
    busy: BusyTimes | _NoCalendar,
) -> tuple[str | None, list[dict[str, str]]]:
    """A free resource at `slot` (None: none) and the next free slots after it."""
    pool = (resource,) if resource else settings.resources
    horizon = slot.start + HORIZON
    taken = await store.taken_slots(
        ctx.db, ctx.tenant.tenant_id, slot.utc_start, horizon, now=ctx.clock()
    )
    free_here = next((r for r in pool if _open_for(busy, taken, r, slot)), None)
    alternatives: list[dict[str, str]] = []
    for s in slots_from(settings, ctx.zone, slot.end):
        who = next((r for r in pool if _open_for(busy, taken, r, s)), None)
        if who is not None:
            alternatives.append({**s.said(), "resource": who})
            if len(alternatives) >= ALTERNATIVES:
                break
    return free_here, alternatives


async def check_slot_tool(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    settings, slot, resource = _slot(ctx, args)
    busy, note = await _owner_busy(ctx, settings, slot)
    who, alternatives = await _free(ctx, settings, slot, resource, busy)
    out: dict[str, Any] = {**slot.said(), "free": who is not None}
    if who is not None:
        out["resource"] = who
    else:
        out["next_free"] = alternatives
    if note:
        out["note"] = note
    return out


def _phone(ctx: ToolContext, args: dict[str, Any]) -> str | None:
    phone = _text(args, "phone")
    if phone is not None:
        digits = [c for c in phone if c.isdigit()]
        if not 6 <= len(digits) <= 15:
            raise ToolArgsError("that phone number does not look right")
        return phone
    return ctx.caller_number


async def book_tool(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    name = _text(args, "name", required=True)
    if args.get("items") is not None and args.get("time") is None:
        return await _book_order(ctx, args, name)
    settings, slot, resource = _slot(ctx, args)
    service = _text(args, "service")
    busy, note = await _owner_busy(ctx, settings, slot)
    pool = tuple(
        r
        for r in ((resource,) if resource else settings.resources)
        if not busy.blocks(r, slot.utc_start, slot.utc_end)
    )
    # Callers on this process wanting one slot queue here, so each loser costs one read, not a
    # write that waits for the database's lock and then fails (SQLite: ~3 s at the p99 for
    # 1,000 at once without it). Across processes the unique index still decides.
    queue = _slot_lock(ctx.tenant.tenant_id, slot.utc_start)
    async with queue:
        pool = tuple(r for r in pool if r not in queue.held)
        booked = await _hold_first_free(ctx, args, settings, slot, pool, name, service)
        if booked is not None:
            queue.held.add(booked["resource"])
    if booked is None:
        _, alternatives = await _free(ctx, settings, slot, resource, busy)
        booked = {"booked": False, **slot.said(), "why": "just taken", "next_free": alternatives}
    if note:
        booked["note"] = note
    return booked


class _SlotQueue(asyncio.Lock):
    """The queue for one slot on this process; `held`: the resources a caller in it just held,
    so those behind skip the database (it lives only while callers queue: moments)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: set[str] = set()


_SLOT_LOCKS: weakref.WeakValueDictionary[tuple[str, datetime], _SlotQueue] = (
    weakref.WeakValueDictionary()
)


def _slot_lock(tenant: str, start: datetime) -> _SlotQueue:
    lock = _SLOT_LOCKS.get((tenant, start))
    if lock is None:
        lock = _SLOT_LOCKS[(tenant, start)] = _SlotQueue()
    return lock


def hold_time(ctx: ToolContext, hold_minutes: int) -> timedelta:
    """How long a hold made now lasts: `hold_minutes`, and in any case until the latest this
    call can end (`ctx.hold_until`: its start plus the longest call, plus a grace), so a hold
    never runs out while its caller is still on the line. The call's end confirms what the
    caller was told of and releases the rest (bridge/session.py); a call whose process died
    leaves its holds to the bound (or to the reaper, which releases them)."""
    hold_for = timedelta(minutes=hold_minutes)
    if ctx.hold_until is not None:
        hold_for = max(hold_for, ctx.hold_until - ctx.clock())
    return hold_for


async def _hold_first_free(
    ctx: ToolContext,
    args: dict[str, Any],
    settings: BookingSettings,
    slot: Slot,
    pool: tuple[str, ...],
    name: str | None,
    service: str | None,
) -> dict[str, Any] | None:
    if not pool:
        return None
    hold_for = hold_time(ctx, settings.hold_minutes)
    taken = await store.taken_slots(
        ctx.db, ctx.tenant.tenant_id, slot.utc_start, slot.utc_end, now=ctx.clock()
    )
    # each free resource in turn; the database decides who gets a contested slot
    mine = ctx.call_sid
    for who in (r for r in pool if not taken.blocks(r, slot.utc_start, slot.utc_end, mine=mine)):
        booking = await store.hold_slot(
            ctx.db,
            store.SlotHold(
                tenant=ctx.tenant.tenant_id,
                resource=who,
                starts_at=slot.utc_start,
                ends_at=slot.utc_end,
                hold_for=hold_for,
                call_sid=ctx.call_sid,
                customer_name=name,
                customer_phone=_phone(ctx, args),
                details={"service": service} if service else None,
            ),
            now=ctx.clock(),
        )
        if booking is not None:
            if booking.reference not in ctx.held:  # (a retry is given its own hold back)
                ctx.held.append(booking.reference)
            return {
                "booked": True,
                **slot.said(),
                "resource": who,
                "reference": booking.reference,
                "status": "held until the end of this call, then confirmed",
            }
    return None


# --- orders -----------------------------------------------------------------------------------

_KNOWLEDGE: dict[tuple[str, str], Knowledge] = {}


def _knowledge(ctx: ToolContext) -> Knowledge:
    key = (ctx.tenant.tenant_id, ctx.tenant.prompt_version)
    known = _KNOWLEDGE.get(key)
    if known is None:
        if len(_KNOWLEDGE) > 64:
            _KNOWLEDGE.clear()
        known = _KNOWLEDGE[key] = knowledge_for(ctx.tenant.input_files)
    return known


def _number(value: Any, key: str, *, whole: bool) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ToolArgsError(f"'{key}' must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ToolArgsError(f"'{key}' must be a number") from None
    if not number.is_finite() or number <= 0 or number > 1000:
        raise ToolArgsError(f"'{key}' must be a number from 1 to 1000")
    if whole and number != number.to_integral_value():
        raise ToolArgsError(f"'{key}' must be a whole number")
    return number


def _lines(ctx: ToolContext, args: dict[str, Any]) -> list[OrderLine]:
    items = args.get("items")
    if not isinstance(items, list) or not items:
        raise ToolArgsError("'items' must list at least one item")
    if len(items) > MAX_ITEMS:
        raise ToolArgsError(f"at most {MAX_ITEMS} items at once")
    knowledge = _knowledge(ctx)
    lines: list[OrderLine] = []
    for raw in items:
        if not isinstance(raw, dict):
            raise ToolArgsError("each item must name an 'item'")
        said = _text(raw, "item", required=True)
        assert said is not None
        count = _number(raw.get("count"), "count", whole=True)
        kg = _number(raw.get("kg"), "kg", whole=False)
        packs = _number(raw.get("packs"), "packs", whole=True)
        mentions = knowledge.find_mentions(said)
        if not mentions:
            raise ToolArgsError(f"{said!r} is not on the price list")
        first = mentions[0]
        section = _text(raw, "section")
        if first.ambiguous and section is not None:
            # "Haircut" is on the gents' and the ladies' lists: the section says which
            inside = tuple(i for i in first.items if i.section.lower() == section.lower())
            first = replace(first, items=inside) if inside else first
        if first.ambiguous:
            options = ", ".join(
                f"{i.display} ({i.section})" if i.section else i.display for i in first.items[:4]
            )
            raise ToolArgsError(f"{said!r} could be: {options}; ask which one")
        item = first.items[0]
        lines.append(
            OrderLine(
                item,
                count=int(count) if count is not None else first.count,
                kg=kg if kg is not None else first.kg,
                packs=int(packs) if packs is not None else first.packs,
                extras=knowledge.extras_for(item, _options(raw)),
            )
        )
    return lines


def _options(raw: dict[str, Any]) -> list[str]:
    """The options the caller chose for one line ("eggless"): priced when the files state an
    extra for them, else they add nothing."""
    options = raw.get("options")
    if options is None:
        return []
    if not isinstance(options, list) or len(options) > MAX_OPTIONS:
        raise ToolArgsError(f"'options' must list at most {MAX_OPTIONS} options")
    return [o for o in (_text({"option": x}, "option") for x in options) if o]


def _priced(knowledge: Knowledge, lines: list[OrderLine]) -> dict[str, Any]:
    """The `quote` answer: the knowledge's one computation of a total (the grounded brain says
    the same figures from it), refused when a line has no price in the files."""
    quote = knowledge.quote(lines)
    unpriced = quote.unpriced()
    if unpriced is not None:
        raise ToolArgsError(f"no price for {unpriced.line.describe()}: {unpriced.why}")
    return quote.answer()


async def quote_tool(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _priced(_knowledge(ctx), _lines(ctx, args))


async def _book_order(ctx: ToolContext, args: dict[str, Any], name: str | None) -> dict[str, Any]:
    priced = _priced(_knowledge(ctx), _lines(ctx, args))
    hold = ctx.tenant.tools.booking.hold_minutes if ctx.tenant.tools.booking else 10
    booking = await store.hold_order(
        ctx.db,
        tenant=ctx.tenant.tenant_id,
        details=priced,
        hold_for=hold_time(ctx, hold),
        call_sid=ctx.call_sid,
        customer_name=name,
        customer_phone=_phone(ctx, args),
        now=ctx.clock(),
    )
    ctx.held.append(booking.reference)
    return {
        "booked": True,
        "reference": booking.reference,
        **priced,
        "status": "held until the end of this call, then confirmed",
    }


# --- earlier orders ----------------------------------------------------------------------------


def _digits(phone: str | None) -> str:
    """A number's last ten digits ("" for none or too short to name anyone)."""
    digits = "".join(c for c in phone or "" if c.isdigit())[-10:]
    return digits if len(digits) >= 6 else ""


def _when(ctx: ToolContext, at: datetime | None) -> str | None:
    return at.astimezone(ctx.zone).strftime("%Y-%m-%d %H:%M") if at else None


async def order_status_tool(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    reference = _text(args, "reference")
    name = _text(args, "name")
    if reference is not None and not reference.isalnum():
        raise ToolArgsError("a reference is letters and digits only")
    # A caller sees only their own: what was made from the number they call from, or, with a
    # withheld number, what they can name by its reference and the name on it. A name or
    # another number alone would read out other customers' orders.
    own = _digits(ctx.caller_number)
    asked = _digits(_text(args, "phone"))
    if asked and asked != own:
        raise ToolArgsError("I can only look up orders made from the number you are calling from")
    if own:
        found = await store.find_bookings(
            ctx.db, ctx.tenant.tenant_id, reference=reference, phone=own, name=name
        )
    elif reference and name:
        found = await store.find_bookings(
            ctx.db, ctx.tenant.tenant_id, reference=reference, name=name
        )
    else:
        raise ToolArgsError("give the booking reference and the name it was made under")
    return {
        "found": len(found),
        "orders": [
            {
                "reference": b.reference,
                "kind": b.kind,
                "status": store.effective_status(b.status, b.expires_at, ctx.clock()),
                "when": _when(ctx, b.starts_at),
                "made": _when(ctx, b.created_at),
                "resource": b.resource or None,
                "details": b.details,
            }
            for b in found
        ],
    }


async def handoff_tool(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    reason = _text(args, "reason", required=True)
    assert reason is not None
    if ctx.on_handoff is None:  # no call to hand off (a test call, a tool used outside one)
        return {"handoff": "not_configured", "say": "Offer to take a message instead."}
    answer = await ctx.on_handoff(HandoffRequest(reason=reason, who=_text(args, "who")))
    # the model speaks the words: the bridge ends the stream once its turn is heard
    return {"handoff": answer.status, "say": f"Say to the caller: {answer.say}"}


FUNCTIONS: dict[str, ToolFn] = {
    "check_slot": check_slot_tool,
    "book": book_tool,
    "quote": quote_tool,
    "order_status": order_status_tool,
    "handoff": handoff_tool,
}
