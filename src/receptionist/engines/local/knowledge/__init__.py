"""What a tenant's own files say, in a form a rule-based receptionist can use.

The grounded brain may only say what the business wrote down, so everything it knows comes from
here, built once per set of input files (:func:`knowledge_for`):

- **facts**: every bullet, sentence and table row of the input files, with its section heading,
  the text as written and a short English sentence to speak on the phone. Lines written in Hindi
  (Devanagari) are rendered into rough English: the file's own bilingual glosses first
  ("डॉ. अनिल शर्मा (Dr. Anil Sharma)", "लैब टेस्ट / Lab tests"), then a small glossary, then
  transliteration, because the local engine's voice speaks English only.
- **retrieval**: Okapi BM25 over the facts, with light stemming and a synonym table
  (timing/hours/open/close, cost/price/rate/how much ...), weekday ranges expanded ("Monday to
  Saturday" also matches "Wednesday") and a coverage score so the brain can tell "I found it"
  from "nothing here is about that".
- **catalog**: priced items parsed from menus and price lists (per piece, per kg, per 250 g,
  packs of 6, "onwards" prices, paired "A / B: ₹x / ₹y" lists, extras such as "₹50 extra per kg"
  for eggless), item mentions with quantities found in what the caller said;
- **quote**: what an order comes to, line by line with the options' surcharges: the one
  computation of a price or total, for the `quote` tool and the grounded brain alike.

No model and no network: plain dictionaries and regular expressions, so it is fast, testable and
never makes anything up.
"""

from __future__ import annotations

from .catalog import Extra, MenuItem
from .facts import Fact
from .index import Knowledge, knowledge_for
from .orders import Mention, OrderLine
from .quote import Quote, QuotedLine
from .retrieval import Hit
from .speech import format_rupees, speakable
from .tokens import tokens

__all__ = [
    "Extra",
    "Fact",
    "Hit",
    "Knowledge",
    "Mention",
    "MenuItem",
    "OrderLine",
    "Quote",
    "QuotedLine",
    "format_rupees",
    "knowledge_for",
    "speakable",
    "tokens",
]
