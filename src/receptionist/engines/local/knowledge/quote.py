"""What an order comes to: the one computation of a price or a total from the files.

The `quote` tool (tools/functions.py) answers with :meth:`Quote.answer`, and the grounded brain
says its acknowledgements ("1 kg Black Forest cake, 750 rupees"), its read-back ("total 910
rupees") and its price answers from the same :func:`quote_lines`, so a caller hears one figure
for one order whichever path asked. Each line is rounded to whole rupees and the total is the sum
of the rounded lines, so the lines said always add up to the total said.

A line's surcharges are the extras the price list states for the options the caller chose
(:func:`.catalog.extras_for`: "Eggless cakes cost ₹50 extra per kg" for a 2 kg eggless cake is
100 rupees on that line), each named in the answer beside the amount it adds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .orders import OrderLine

_RUPEE = Decimal(1)


def _whole(amount: Decimal) -> Decimal:
    return amount.quantize(_RUPEE, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class QuotedLine:
    """One order line priced from the files; ``rupees`` None when it cannot be (``why``)."""

    line: OrderLine
    rupees: Decimal | None
    each: Decimal | None = None  # the price of one, when the line is n x that price
    surcharges: tuple[tuple[str, Decimal], ...] = ()  # (option, rupees) included in ``rupees``
    why: str = ""  # "say the weight" | "ask the shop for this price"


@dataclass(frozen=True, slots=True)
class Quote:
    """An order priced line by line; ``total`` None when some line has no price."""

    lines: tuple[QuotedLine, ...]
    total: Decimal | None
    onwards: bool  # some price is a starting price ("₹700 onwards"): the total may be more

    def for_line(self, line: OrderLine) -> QuotedLine | None:
        return next((q for q in self.lines if q.line is line), None)

    def unpriced(self) -> QuotedLine | None:
        return next((q for q in self.lines if q.rupees is None), None)

    def answer(self) -> dict[str, Any]:
        """The `quote` tool's answer (only for a quote whose every line is priced)."""
        lines = []
        for q in self.lines:
            assert q.rupees is not None
            said: dict[str, Any] = {"line": q.line.describe(), "rupees": str(q.rupees)}
            if q.each is not None:
                said["each"] = str(q.each)
            if q.surcharges:
                said["extras"] = [{"option": o, "rupees": str(r)} for o, r in q.surcharges]
            lines.append(said)
        assert self.total is not None
        out: dict[str, Any] = {"lines": lines, "total_rupees": str(self.total)}
        if self.onwards:
            out["note"] = "some prices are starting prices ('onwards'): the total may be more"
        return out


def _base_amount(line: OrderLine, half_kg_surcharge: Decimal | None) -> Decimal | None:
    """The line's price before its options' surcharges, or None when the files do not say."""
    it = line.item
    if line.kg is not None:
        if it.unit_kg is None or it.price is None:
            return None  # a weight for something sold by the piece: do not guess
        amount = it.price * line.kg / it.unit_kg
        if it.per_kg and half_kg_surcharge is not None and line.kg < 1:
            amount += half_kg_surcharge
        return amount
    if it.per_kg:
        return None  # by weight but no weight said yet
    pieces = line.count if line.count is not None else 1
    if line.packs is not None:
        if it.pack is not None:
            return it.pack[1] * line.packs
        return it.price * line.packs if it.price is not None else None
    if (
        it.pack is not None
        and pieces % it.pack[0] == 0
        and (it.price is None or it.pack[1] < it.price * it.pack[0])
    ):
        return it.pack[1] * (pieces // it.pack[0])  # "box of 6 for ₹390"
    return it.price * pieces if it.price is not None else None


def _surcharges(line: OrderLine) -> tuple[tuple[str, Decimal], ...]:
    """What each chosen option adds: per kg times the weight, else once per piece (a per-kg
    extra on something sold by the piece adds nothing: the files price it by weight)."""
    out = []
    for e in line.extras:
        if line.kg is not None:
            amount = e.amount * line.kg if e.per_kg else e.amount
        elif e.per_kg:
            continue
        else:
            amount = e.amount * (line.count or 1)
        out.append((e.keyword, _whole(amount)))
    return tuple(out)


def quote_line(line: OrderLine, half_kg_surcharge: Decimal | None = None) -> QuotedLine:
    base = _base_amount(line, half_kg_surcharge)
    if base is None:
        why = "say the weight" if line.needs_weight() else "ask the shop for this price"
        return QuotedLine(line, None, why=why)
    surcharges = _surcharges(line)
    rupees = _whole(base) + sum((r for _, r in surcharges), Decimal(0))
    price, count = line.item.price, line.count or 1
    each = None
    by_piece = line.kg is None and line.packs is None
    if price is not None and by_piece and count > 1 and not surcharges and base == price * count:
        # the price of one, so the caller hears how the line adds up ("2 at 80 each"); not
        # when a box price applied (6 cupcakes: 390, not 6 x 70)
        each = _whole(price)
    return QuotedLine(line, rupees, each, surcharges)


def quote_lines(
    lines: Sequence[OrderLine], half_kg_surcharge: Mapping[str, Decimal] | None = None
) -> Quote:
    """Every line priced from the files (``half_kg_surcharge``: per price-list section, "half
    kg = half the price + ₹30"), and the total when every line has a price."""
    quoted = tuple(
        quote_line(line, (half_kg_surcharge or {}).get(line.item.section)) for line in lines
    )
    amounts = [q.rupees for q in quoted]
    total = None
    if all(a is not None for a in amounts):
        total = sum((a for a in amounts if a is not None), Decimal(0))
    return Quote(quoted, total, any(line.item.onwards for line in lines))
