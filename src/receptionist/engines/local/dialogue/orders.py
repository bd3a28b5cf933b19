"""The order lines behind a call's items: what the caller named, how much, with which extras,
priced from the files; "which one?" choices; what is said back when a line is taken.
"""

from __future__ import annotations

from decimal import Decimal

from receptionist.engines.local.brain import Choice
from receptionist.engines.local.dialogue.core import BrainCore
from receptionist.engines.local.dialogue.corrections import replaces
from receptionist.engines.local.dialogue.patterns import (
    ADD_CUE,
    NEGATED,
)
from receptionist.engines.local.dialogue.policy import (
    asks_price,
)
from receptionist.engines.local.intents import (
    FieldPlan,
    join_or,
)
from receptionist.engines.local.knowledge import (
    Fact,
    Mention,
    MenuItem,
    OrderLine,
    format_rupees,
    tokens,
)
from receptionist.language.quantities import parse_kg, parse_number
from receptionist.language.text import normalise


class OrderTaking(BrainCore):
    """Order lines: items named, how much, extras, prices from the files, "which one?"."""

    def _make_choice(
        self,
        field: str,
        items: list[MenuItem],
        count: int | None,
        kg: Decimal | None,
        packs: int | None,
    ) -> Choice:
        displays = [it.display for it in items]
        labels = []
        for it in items:
            label = it.display
            if displays.count(it.display) > 1:
                others = set().union(*(o.context for o in items if o is not it))
                extra = [w for w in tokens(it.section) if w not in others and w != "price"]
                label = (
                    f"{it.display} for {' '.join(extra)}"
                    if extra
                    else f"{it.display} ({it.section})"
                )
            labels.append(label)
        return Choice(field, items, labels, count, kg, packs)

    def _choice_question(self, choice: Choice) -> str:
        opts = [
            f"the {label} at {it.describe_price()}"
            for label, it in zip(choice.labels, choice.options, strict=True)
        ]
        return f"Do you mean {join_or(opts)}?"

    def _sync_items(self, field: str) -> None:
        lines = [line for line in self.state.order if line.field == field]
        if lines:
            self.state.details[field] = [line.describe() for line in lines]
        else:
            self.state.details.pop(field, None)

    def _price_lines(self) -> None:
        """Apply weights, extras and totals to the priced lines (custom cake flavour x kg ...)."""
        st = self.state
        plans = self._plans.get(st.intent or "", [])
        kg_value = next(
            (st.details[p.name] for p in plans if p.role == "kg" and p.name in st.details), None
        )
        wanted = set(st.extras_said)
        for p in plans:
            if p.role == "yesno" and st.details.get(p.name) is True:
                wanted.add(p.keyword)
            elif p.role == "yesno" and st.details.get(p.name) is False:
                wanted.discard(p.keyword)
        for line in st.order:
            plan = next((p for p in plans if p.name == line.field), None)
            if plan is not None and plan.role == "entity" and line.item.per_kg and kg_value:
                line.kg = Decimal(str(kg_value))
            line.extras = self.kb.extras_for(line.item, wanted)
        # "a unicorn theme cake, vanilla" is one cake, priced by the theme cake's starting price
        for p in plans:
            lines = [x for x in st.order if x.field == p.name]
            lead = [x for x in lines if x.item.per_kg and x.item.onwards]
            if p.role == "entity" and lead and len(lines) > 1:
                st.order = [x for x in st.order if x.field != p.name or x is lead[0]]
        for p in plans:
            if p.role == "items":
                self._sync_items(p.name)
        st.quote = self.kb.quote(st.order) if st.order else None  # the tool's computation

    def _total_text(self) -> str:
        st = self.state
        if st.total is None or not st.order:
            return ""
        onwards = any(line.item.onwards for line in st.order)
        if onwards:
            return f"starting from {format_rupees(st.total)}, the final price will be confirmed"
        return f"{'total' if len(st.order) > 1 else 'price'} {format_rupees(st.total)}"

    def _extract_items(self, plan: FieldPlan, text: str, *, correcting: bool) -> bool:
        """Update the order lines of an items field from ``text``; True if anything changed.

        New items are added (the same item again updates its quantity); a bare "2 kg" fills the
        line that still needs a weight; after the read-back, "not white forest, black forest"
        swaps the item and keeps the quantity.
        """
        lines = [line for line in self.state.order if line.field == plan.name]
        mentions = self.kb.find_mentions(text, plan.pool)
        if mentions:
            changed = self._lines_named(plan, text, lines, mentions, correcting=correcting)
        else:
            changed = self._quantity_only(text, lines, correcting=correcting)
        if changed:
            self._sync_items(plan.name)
        return changed

    def _quantity_only(self, text: str, lines: list[OrderLine], *, correcting: bool) -> bool:
        """No item named: "2 kg" for the line that needs a weight, or a corrected quantity."""
        if not lines:
            return False
        kg = parse_kg(text, lenient=any(line.needs_weight() for line in lines))
        needing = [line for line in lines if line.needs_weight()]
        by_weight = [line for line in lines if line.item.per_kg]
        if kg is not None and (needing or (correcting and len(lines) == 1)):
            target = needing[0] if needing else lines[0]
            if target.item.unit_kg is not None:
                target.kg, target.count = kg, None
                return True
        elif kg is not None and correcting and len(by_weight) == 1:
            by_weight[0].kg = kg  # "make it 1 kg": the one thing sold by weight
            return True
        elif correcting and len(lines) == 1:
            n = parse_number(text)
            if n is not None and n == int(n) and not lines[0].item.per_kg:
                lines[0].count = int(n)
                return True
        return False

    def _lines_named(
        self,
        plan: FieldPlan,
        text: str,
        lines: list[OrderLine],
        mentions: list[Mention],
        *,
        correcting: bool,
    ) -> bool:
        """Items named in ``text``: added, re-quantified, swapped for one said with "not"."""
        st = self.state
        new, dropped = self._new_lines(plan, text, lines, mentions)
        changed = False
        if dropped:
            st.order = [x for x in st.order if not any(x is d for d in dropped)]
            lines = [x for x in lines if not any(x is d for d in dropped)]
            for line in new:
                if line.count is None and line.kg is None and line.packs is None:
                    line.kg, line.count, line.packs = (
                        dropped[0].kg,
                        dropped[0].count,
                        dropped[0].packs,
                    )
            changed = True
        known = {id(x.item) for x in lines}
        fresh = [line for line in new if id(line.item) not in known]
        if (
            ((correcting and st.awaiting_confirmation) or replaces(text))
            and len(lines) == 1
            and len(fresh) == 1
            and len(new) == 1
            and not ADD_CUE.search(text)
        ):
            # "no, not black forest, white forest": swap the item, keep the quantity
            old = lines[0]
            bare = fresh[0].count is None and fresh[0].kg is None and fresh[0].packs is None
            if bare and (fresh[0].item.unit_kg is not None or old.kg is None):
                fresh[0].kg, fresh[0].count, fresh[0].packs = old.kg, old.count, old.packs
            st.order = [line for line in st.order if line is not old] + fresh
            return True
        for line in new:
            same = next((x for x in st.order if x.item is line.item and x.field == plan.name), None)
            if same is None:
                st.order.append(line)
                changed = True
            elif line.count is not None or line.kg is not None or line.packs is not None:
                same.count, same.kg, same.packs = line.count, line.kg, line.packs
                changed = True
        return changed

    def _new_lines(
        self, plan: FieldPlan, text: str, lines: list[OrderLine], mentions: list[Mention]
    ) -> tuple[list[OrderLine], list[OrderLine]]:
        """The lines the mentions make, and the existing lines named after "not" (to drop);
        a name that fits several items opens a "which one?" choice instead."""
        st = self.state
        new: list[OrderLine] = []
        dropped: list[OrderLine] = []
        norm = normalise(text)
        for m in mentions:
            if not m.ambiguous and NEGATED.search(norm[max(0, m.start - 16) : m.start]):
                # "not white forest, black forest": the item named after "not" goes
                dropped += [x for x in lines if x.item is m.items[0]]
                continue
            if m.ambiguous:
                if st.choice is None:
                    st.choice = self._make_choice(plan.name, list(m.items), m.count, m.kg, m.packs)
                continue
            new.append(
                OrderLine(m.items[0], count=m.count, kg=m.kg, packs=m.packs, field=plan.name)
            )
        return new, dropped

    def _area_facts(self, address: str) -> list[Fact]:
        """What the files say about delivering to the area of ``address`` (charge, no delivery)."""
        facts = [
            it.fact
            for m in self.kb.find_mentions(address)
            for it in m.items
            if it.kind == "charge" and it.fact is not None
        ]
        if not facts:
            said = {t for t in tokens(address) if not t.isdigit() and len(t) >= 5}
            for hit in self.kb.search("delivery " + address, k=1):
                words = set(tokens(hit.fact.english))
                if "deliver" in words and said & words:
                    facts.append(hit.fact)
        for f in facts:
            if f.spoken not in self.state.facts_used:
                self.state.facts_used.append(f.spoken)
        return facts[:1]

    def _acknowledge(self, changed: list[str], already: list[Fact]) -> tuple[list[str], list[Fact]]:
        """Say back what was just understood when it carries a number worth checking (prices
        from the menu, the delivery charge of the area), with the facts it comes from."""
        st = self.state
        out: list[str] = []
        facts: list[Fact] = []
        plans = {p.name: p for p in self._plans.get(st.intent or "", [])}
        for name in changed:
            plan = plans.get(name)
            if plan is not None and "address" in name and isinstance(st.details.get(name), str):
                area = self._area_facts(st.details[name])
                out += [f.spoken for f in area]
                facts += area
            if plan is None or plan.role not in ("items", "entity"):
                continue
            lines = [line for line in st.order if line.field == name]
            if not lines or all(
                line.item.fact in already and line.kg is None and line.count is None
                for line in lines
            ):
                continue
            facts += [line.item.fact for line in lines if line.item.fact is not None]
            quote = self.kb.quote(st.order)  # every figure said is the `quote` tool's
            quoted = [quote.for_line(line) for line in lines]
            priced = [
                (line, q.rupees if q else None) for line, q in zip(lines, quoted, strict=True)
            ]
            bits = []
            # a service booked is said back without its price unless the caller asked it: the
            # price comes once, in the read-back (an order's lines carry theirs: they add up)
            quiet = plan.role == "entity" and not asks_price(self.state.history[-1][1])
            for line, amount in priced:
                if quiet:
                    bits.append(line.describe())
                elif amount is not None:
                    word = "from " if line.item.onwards else ""
                    bits.append(f"{line.describe()}, {word}{format_rupees(amount)}")
                elif not line.needs_weight():
                    bits.append(line.describe())
            if bits:
                sentence = "; ".join(bits) + "."
                out.append(sentence[:1].upper() + sentence[1:])
            if quote.total is not None and len(st.order) > 1 and len(priced) == len(st.order):
                out.append(f"That comes to {format_rupees(quote.total)}.")
        return out, facts
