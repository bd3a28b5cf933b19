"""The dashboard's languages (English, Hindi) and its way of writing times, numbers and money.

Hindi comes from `locale/hi/LC_MESSAGES/messages.po`, read at start-up with Babel's PO reader
and turned into a `Translations` object in memory, so no compiled .mo file is kept in the tree.
One Jinja2 environment per language, each with its translations installed (autoescape on).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
LOCALES = HERE / "locale"
LANGUAGES = ("en", "hi")
# Babel locale per language: Indian English writes lakhs and crores (1,23,456) like Hindi does
_BABEL_LOCALE = {"en": "en_IN", "hi": "hi_IN"}
MAX_OFFSET_MS = 7 * 24 * 3600 * 1000  # no call lasts a week; beyond that a time means nothing


def N_(message: str) -> str:
    """Marks a message in Python code for extraction; it is translated where it is shown."""
    return message


def load_translations(language: str) -> NullTranslations:
    if language == "en":
        return NullTranslations()
    po = LOCALES / language / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def environments() -> dict[str, Environment]:
    envs = {}
    for language in LANGUAGES:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(load_translations(language), newstyle=True)  # type: ignore[attr-defined]
        envs[language] = env
    return envs


def default_language(tenant_languages: tuple[str, ...] | list[str] | None) -> str:
    """Hindi when the tenant's first language is Hindi, else English."""
    if tenant_languages:
        first = str(tenant_languages[0]).lower()
        if first.split("-")[0].split("_")[0] == "hi" or first == "hindi":
            return "hi"
    return "en"


@dataclass(frozen=True)
class Formats:
    """How one page writes values: the tenant's time zone, the reader's language."""

    language: str
    tz: ZoneInfo
    usd_inr: float

    @property
    def locale(self) -> str:
        return _BABEL_LOCALE.get(self.language, "en_IN")

    def when(self, value: datetime | None) -> str:
        if value is None:
            return "–"
        return format_datetime(value, "d MMM y, h:mm a", tzinfo=self.tz, locale=self.locale)

    def opening(self, value: datetime | None) -> str:
        """A coming opening, short: "Tue 10:00" (a button's label)."""
        if value is None:
            return "–"
        return format_datetime(value, "EEE HH:mm", tzinfo=self.tz, locale=self.locale)

    def when_iso(self, value: object) -> str:
        """`when` of a time kept as ISO 8601 text in a JSON column (a hand-off's)."""
        try:
            return self.when(datetime.fromisoformat(str(value)))
        except ValueError:
            return "–"

    def time(self, value: datetime | None) -> str:
        if value is None:
            return "–"
        return format_time(value, "h:mm a", tzinfo=self.tz, locale=self.locale)

    def at_offset(self, started: datetime | None, offset_ms: Any) -> str:
        """The wall-clock time of a turn that began `offset_ms` after the call started."""
        if started is None or not isinstance(offset_ms, int | float):
            return ""
        if not 0 <= offset_ms <= MAX_OFFSET_MS:  # a stored turn is data like any other
            return ""
        stamp = started + timedelta(milliseconds=float(offset_ms))
        return format_time(stamp, "h:mm:ss a", tzinfo=self.tz, locale=self.locale)

    def day(self, value: date | None) -> str:
        if value is None:
            return "–"
        return format_date(value, "EEE d MMM", locale=self.locale)

    def iso_day(self, value: datetime | None) -> str:
        return value.astimezone(self.tz).date().isoformat() if value else ""

    def num(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def seconds(self, ms: int | float | None) -> str:
        if ms is None:
            return "–"
        total = round(float(ms) / 1000)
        return f"{total // 60}:{total % 60:02d}"

    def money(self, usd: float | None, inr: float | None = None) -> str:
        """₹ first, $ beside it: `₹84.00 ($1.01)`."""
        if usd is None:
            return "–"
        if inr is None:
            inr = round(usd * self.usd_inr, 2)
        rupees = format_currency(inr, "INR", locale=self.locale)
        dollars = format_currency(
            usd, "USD", format="¤#,##0.00##", locale=self.locale, currency_digits=False
        )
        return f"{rupees} ({dollars})"
