"""Token prices: a versioned table (``pricing.toml``) and exact decimal cost arithmetic.

Pure code: no database, no network. :mod:`receptionist.postcall.costs` applies it to the stored
``ai_token_usage`` rows.

The table
    ``[[price]]`` entries with ``model`` (exact name or fnmatch glob), ``valid_from`` (date),
    ``currency`` ("USD"), the four rates per 1M tokens (``audio_input``, ``text_input``,
    ``audio_output``, ``text_output``) and ``source``. The packaged file is the default; a
    caller may pass another path (e.g. from a setting).

Lookup (:meth:`PricingTable.price_for`)
    Among the entries whose ``valid_from`` is on or before the day, an entry naming the model
    exactly wins over any glob; among those, the newest ``valid_from`` wins; a tie between globs
    goes to the most specific (most literal characters). No entry: :class:`UnknownModelPrice`.

Costing (:func:`cost_of`)
    ``tokens × rate / 1_000_000`` per modality, in :class:`~decimal.Decimal`, unrounded.
    The remainder rule, for usage whose modality split is missing or partial:

    - input: ``input_tokens - input_audio_tokens - input_text_tokens`` (when positive) is charged
      at the modality the purpose implies: ``live`` → audio, ``analysis`` / ``message`` → text;
    - output: the same with the output figures;
    - ``total_tokens`` beyond ``input_tokens + output_tokens`` (Gemini counts thinking tokens
      there, which Google bills as output) is charged at the text output rate;
    - a split larger than its total is taken as it is (the split is the better information).
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from receptionist.usage import FIGURES, TokenUsage

Modality = Literal["audio", "text"]

#: Which modality the unknown remainder of a usage row is charged at, by purpose.
PURPOSE_MODALITY: Mapping[str, Modality] = {"live": "audio", "analysis": "text", "message": "text"}

SUPPORTED_CURRENCIES = frozenset({"USD"})
RATE_FIELDS = ("audio_input", "text_input", "audio_output", "text_output")
REQUIRED_FIELDS = ("model", "valid_from", "currency", *RATE_FIELDS, "source")

ONE_MILLION = Decimal(1_000_000)
#: Precision of stored costs (``ai_token_usage.total_cost`` is NUMERIC(12, 6)).
COST_QUANTUM = Decimal("0.000001")

# enough digits for any token count × rate without rounding
_EXACT = Context(prec=60)


class PricingError(ValueError):
    """The pricing table is malformed. The message names the file and the entry."""


class UnknownModelPrice(LookupError):
    """No price entry covers this model on this day: the cost must not silently be zero."""

    def __init__(self, model: str, on: date, origin: str = "pricing table") -> None:
        self.model = model
        self.on = on
        self.origin = origin
        super().__init__(
            f"no price for model {model!r} on {on.isoformat()} in {origin}: "
            "add a [[price]] entry for it"
        )


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One entry of the table. Rates are per 1,000,000 tokens in ``currency``."""

    model: str
    valid_from: date
    currency: str
    audio_input: Decimal
    text_input: Decimal
    audio_output: Decimal
    text_output: Decimal
    source: str

    @property
    def is_glob(self) -> bool:
        return _is_glob(self.model)

    @property
    def version(self) -> str:
        """A stable name for this entry: ``"<model pattern>@<valid_from>"``."""
        return f"{self.model}@{self.valid_from.isoformat()}"

    def matches(self, model: str) -> bool:
        if self.is_glob:
            return fnmatch.fnmatchcase(model, self.model)
        return model == self.model

    def rate(self, direction: Literal["input", "output"], modality: Modality) -> Decimal:
        value: Decimal = getattr(self, f"{modality}_{direction}")
        return value

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary, stored with each costed usage row."""
        return {
            "version": self.version,
            "model": self.model,
            "valid_from": self.valid_from.isoformat(),
            "currency": self.currency,
            "per_million": {f: str(getattr(self, f)) for f in RATE_FIELDS},
            "source": self.source,
        }


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _literal_chars(pattern: str) -> int:
    return sum(1 for ch in pattern if ch not in "*?[]")


def normalise_model_name(model: str) -> str:
    """``"models/gemini-x"`` (the wire spelling) → ``"gemini-x"``; surrounding blanks dropped."""
    name = model.strip()
    return name.removeprefix("models/")


class PricingTable:
    """All price entries, with lookup by model and day."""

    def __init__(
        self, entries: Iterable[ModelPrice], *, origin: str = "pricing table", digest: str = ""
    ) -> None:
        self.entries: tuple[ModelPrice, ...] = tuple(entries)
        self.origin = origin
        #: short hash of the file's bytes: which table costed a call
        self.digest = digest

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"PricingTable({self.origin!r}, {len(self.entries)} entries)"

    def price_for(self, model: str, on: date) -> ModelPrice:
        """The entry that prices ``model`` on day ``on`` (see the module docstring)."""
        if isinstance(on, datetime):  # a datetime is a date too: use its calendar day
            on = on.date()
        name = normalise_model_name(model)
        live = [e for e in self.entries if e.valid_from <= on and e.matches(name)]
        exact = [e for e in live if not e.is_glob]
        if exact:
            return max(exact, key=lambda e: e.valid_from)
        if live:
            return max(live, key=lambda e: (e.valid_from, _literal_chars(e.model)))
        raise UnknownModelPrice(name, on, self.origin)


# --- loading ------------------------------------------------------------------------------------


def default_pricing_path() -> Path:
    """The packaged ``pricing.toml``."""
    return Path(str(resources.files("receptionist.postcall").joinpath("pricing.toml")))


def load_pricing(path: Path | None = None) -> PricingTable:
    """Read and validate a pricing file (default: the packaged one).

    Raises :class:`PricingError` naming the file and the entry for any problem.
    """
    file = Path(path) if path is not None else default_pricing_path()
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise PricingError(f"cannot read pricing file {file}: {exc.strerror or exc}") from None
    return parse_pricing(raw, origin=str(file))


def parse_pricing(data: bytes | str, *, origin: str = "pricing table") -> PricingTable:
    """Validate TOML text (see :func:`load_pricing`)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PricingError(f"{origin}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PricingError(f"{origin}: not valid TOML: {exc}") from None

    unknown_top = sorted(set(doc) - {"price"})
    if unknown_top:
        raise PricingError(
            f"{origin}: unknown top-level key(s) {', '.join(unknown_top)}; "
            "expected only [[price]] entries"
        )
    items = doc.get("price")
    if not isinstance(items, list) or not items:
        raise PricingError(f"{origin}: no [[price]] entries")

    entries: list[ModelPrice] = []
    seen: dict[tuple[str, date], int] = {}
    for index, item in enumerate(items, start=1):
        entry = _parse_entry(item, index, origin)
        key = (entry.model, entry.valid_from)
        if key in seen:
            raise PricingError(
                f"{origin}: entry {index} (model {entry.model!r}) repeats entry {seen[key]}: "
                f"same model and valid_from {entry.valid_from.isoformat()}"
            )
        seen[key] = index
        entries.append(entry)
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return PricingTable(entries, origin=origin, digest=digest)


def _parse_entry(item: Any, index: int, origin: str) -> ModelPrice:
    if not isinstance(item, dict):
        raise PricingError(f"{origin}: entry {index} is not a table")
    model_name = item.get("model")
    label = f"entry {index}" + (f" (model {model_name!r})" if isinstance(model_name, str) else "")

    def fail(msg: str) -> PricingError:
        return PricingError(f"{origin}: {label}: {msg}")

    missing = [f for f in REQUIRED_FIELDS if f not in item]
    if missing:
        raise fail(f"missing field(s) {', '.join(missing)}")
    extra = sorted(set(item) - set(REQUIRED_FIELDS))
    if extra:
        raise fail(f"unknown field(s) {', '.join(extra)}")

    model = item["model"]
    if not isinstance(model, str) or not model.strip():
        raise fail("model must be a non-empty string")
    if model != model.strip():
        raise fail("model must not have leading or trailing blanks")

    valid_from = _parse_date(item["valid_from"], fail)

    currency = item["currency"]
    if currency not in SUPPORTED_CURRENCIES:
        supported = ", ".join(sorted(SUPPORTED_CURRENCIES))
        raise fail(f"currency {currency!r} is not supported (use {supported})")

    rates = {f: _parse_rate(f, item[f], fail) for f in RATE_FIELDS}

    source = item["source"]
    if not isinstance(source, str) or not source.strip():
        raise fail("source must say where the figures came from")

    return ModelPrice(
        model=model,
        valid_from=valid_from,
        currency=currency,
        source=" ".join(source.split()),
        **rates,
    )


def _parse_date(value: Any, fail: Any) -> date:
    if isinstance(value, datetime):
        raise fail(f"valid_from must be a date (YYYY-MM-DD), not a date-time: {value!r}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise fail(f"valid_from must be a date (YYYY-MM-DD), got {value!r}")


def _parse_rate(name: str, value: Any, fail: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise fail(f"{name} must be a number (per 1M tokens), got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(f"{name} must be finite, got {value!r}")
    try:
        # str() of a float is its shortest repr: 0.3 → Decimal("0.3"), not 0.29999…
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise fail(f"{name} is not a number: {value!r}") from None
    if not rate.is_finite():
        raise fail(f"{name} must be finite, got {value!r}")
    if rate < 0:
        raise fail(f"{name} must not be negative, got {value!r}")
    return rate


# --- costing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Tokens charged per (direction, modality) after the remainder rule, and the amount."""

    input_audio: int
    input_text: int
    output_audio: int
    output_text: int
    #: how many of the above came from the remainder rule (not from a reported split)
    input_remainder: int
    output_remainder: int
    unattributed: int  # total_tokens beyond input + output, charged as text output
    remainder_modality: Modality
    total: Decimal  # exact, unrounded, in the price's currency

    def describe(self) -> dict[str, Any]:
        return {
            "charged_tokens": {
                "input_audio": self.input_audio,
                "input_text": self.input_text,
                "output_audio": self.output_audio,
                "output_text": self.output_text,
            },
            "remainder": {
                "modality": self.remainder_modality,
                "input": self.input_remainder,
                "output": self.output_remainder,
                "beyond_total_as_text_output": self.unattributed,
            },
        }


def _check_counts(usage: TokenUsage) -> None:
    for name in FIGURES:
        if getattr(usage, name) < 0:
            raise ValueError(f"{name} must not be negative: {getattr(usage, name)}")
    if usage.total_tokens is not None and usage.total_tokens < 0:
        raise ValueError(f"total_tokens must not be negative: {usage.total_tokens}")


def cost_breakdown(usage: TokenUsage, price: ModelPrice) -> CostBreakdown:
    """Apply the remainder rule (module docstring) and price every part exactly."""
    _check_counts(usage)
    try:
        modality = PURPOSE_MODALITY[usage.purpose]
    except KeyError:
        raise ValueError(
            f"unknown purpose {usage.purpose!r}; expected one of {sorted(PURPOSE_MODALITY)}"
        ) from None

    in_split = usage.input_audio_tokens + usage.input_text_tokens
    out_split = usage.output_audio_tokens + usage.output_text_tokens
    in_rest = max(0, usage.input_tokens - in_split)
    out_rest = max(0, usage.output_tokens - out_split)
    known_total = max(usage.input_tokens, in_split) + max(usage.output_tokens, out_split)
    beyond = max(0, (usage.total_tokens or 0) - known_total)

    charged: dict[tuple[Literal["input", "output"], Modality], int] = {
        ("input", "audio"): usage.input_audio_tokens,
        ("input", "text"): usage.input_text_tokens,
        ("output", "audio"): usage.output_audio_tokens,
        ("output", "text"): usage.output_text_tokens,
    }
    charged["input", modality] += in_rest
    charged["output", modality] += out_rest
    charged["output", "text"] += beyond

    with localcontext(_EXACT):
        total = sum(
            (Decimal(n) * price.rate(d, m) for (d, m), n in charged.items()),
            start=Decimal(0),
        )
        total = total / ONE_MILLION
    return CostBreakdown(
        input_audio=charged["input", "audio"],
        input_text=charged["input", "text"],
        output_audio=charged["output", "audio"],
        output_text=charged["output", "text"],
        input_remainder=in_rest,
        output_remainder=out_rest,
        unattributed=beyond,
        remainder_modality=modality,
        total=total,
    )


def cost_of(usage: TokenUsage, price: ModelPrice) -> Decimal:
    """The exact cost (unrounded Decimal, in ``price.currency``) of ``usage`` at ``price``."""
    return cost_breakdown(usage, price).total


def round_cost(amount: Decimal) -> Decimal:
    """``amount`` rounded half-up to the stored precision (6 decimal places)."""
    return amount.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def usd_to_inr(amount: Decimal, rate: Decimal, *, places: int = 2) -> Decimal:
    """USD → INR at ``rate`` rupees per dollar, rounded half-up to ``places`` (paise: 2)."""
    if not isinstance(rate, Decimal):
        raise TypeError("rate must be a Decimal (a float would bring binary rounding errors)")
    if not rate.is_finite() or rate <= 0:
        raise ValueError(f"exchange rate must be a positive number, got {rate}")
    with localcontext(_EXACT):
        value = Decimal(amount) * rate
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


__all__ = [
    "COST_QUANTUM",
    "PURPOSE_MODALITY",
    "CostBreakdown",
    "ModelPrice",
    "PricingError",
    "PricingTable",
    "UnknownModelPrice",
    "cost_breakdown",
    "cost_of",
    "default_pricing_path",
    "load_pricing",
    "normalise_model_name",
    "parse_pricing",
    "round_cost",
    "usd_to_inr",
]
