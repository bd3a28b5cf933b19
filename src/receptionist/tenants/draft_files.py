"""The files of a draft tenant, from a :class:`~.draft.BusinessDraft`: `tenant.toml`, the two
prompts and `input_files/` (prices, hours, address, about).

The call types, WhatsApp templates and rules come from a small catalogue per kind of business,
written so they always validate; what the description left out is written as a TODO the owner
can see (and the loader accepts), never made up. The business name goes into templates only as
the `business.name` variable, so nothing the owner typed can break a template's placeholders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .bundle import ANALYZER_PROMPT, ASSISTANT_PROMPT, CONFIG_FILE, TenantBundle
from .draft import GENERAL, BusinessDraft, plain_text

__all__ = ["PLACEHOLDER_OWNER_PHONE", "default_greeting", "render_bundle"]

#: written when no owner's number was found: valid E.164, obviously not a real number
PLACEHOLDER_OWNER_PHONE = "+910000000000"

_NAME = ("name", "string", True, "Caller's name")
_PHONE = ("phone", "phone", True, "Number to call back or message")
_QUESTION = ("question", "string", True, "What the caller wanted to know")
_DATE = ("date", "date", True, "Date asked for")
_TIME = ("time", "time", False, "Time asked for")


@dataclass(frozen=True, slots=True)
class _CallType:
    name: str
    description: str
    fields: tuple[tuple[str, str, bool, str], ...]
    task: str  # the assistant's task for such a call
    confirm: str | None = None  # the detail the customer's WhatsApp confirmation names


_ENQUIRY = _CallType(
    "enquiry",
    "General question: prices, timings, address, what is available",
    (_QUESTION,),
    "Question: answer from the business information below; if it is not there, say the owner "
    "will call back, and take the caller's name and number.",
)
_CATALOGUE: dict[str, tuple[_CallType, ...]] = {
    "food": (
        _CallType(
            "order",
            "Customer wants to order items for pickup or delivery",
            (
                _NAME,
                _PHONE,
                ("items", "list", True, "Items ordered, each with its size or quantity"),
                ("pickup_or_delivery", "string", True, "'pickup' or 'delivery'"),
                ("delivery_address", "string", False, "Address with landmark, for delivery"),
                _DATE,
                _TIME,
            ),
            "Order: collect name, phone number, the items with sizes or quantities, pickup or "
            "delivery (and the address), date and time.",
            "items",
        ),
        _CallType(
            "complaint",
            "Customer is unhappy with an order: late, wrong item, quality",
            (_NAME, _PHONE, ("issue", "string", True, "What went wrong, in their words")),
            "Complaint: apologise, collect name, phone number and what went wrong; say the "
            "owner will call back.",
        ),
        _ENQUIRY,
    ),
    "appointments": (
        _CallType(
            "appointment",
            "Caller wants to book a service or consultation for a date and time",
            (_NAME, _PHONE, ("service", "string", True, "The service asked for"), _DATE, _TIME),
            "Appointment: collect name, phone number, the service, date and preferred time; say "
            "the slot will be confirmed on WhatsApp.",
            "service",
        ),
        _CallType(
            "cancellation",
            "Caller wants to cancel or move an appointment",
            (
                _NAME,
                _PHONE,
                ("appointment_date", "date", False, "Date of the appointment"),
                ("new_date", "date", False, "New date, if they want to move it"),
            ),
            "Cancellation or change: collect name, phone number, the appointment date and any "
            "new date and time.",
        ),
        _ENQUIRY,
    ),
    "shop": (
        _CallType(
            "order",
            "Customer wants to buy or reserve items, for pickup or delivery",
            (
                _NAME,
                _PHONE,
                ("items", "list", True, "Items asked for, with quantities"),
                ("pickup_or_delivery", "string", False, "'pickup' or 'delivery'"),
                ("delivery_address", "string", False, "Address with landmark, for delivery"),
            ),
            "Order: collect name, phone number, the items with quantities, and pickup or "
            "delivery (with the address).",
            "items",
        ),
        _ENQUIRY,
    ),
    GENERAL: (
        _CallType(
            "callback",
            "Caller wants the owner to call back about something",
            (_NAME, _PHONE, ("reason", "string", True, "What it is about")),
            "Call back: collect name, phone number and what it is about; say the owner will "
            "call back.",
            "reason",
        ),
        _ENQUIRY,
    ),
}


_LANGUAGE_NAMES = {
    "en": "English", "hi": "Hindi", "kn": "Kannada", "ta": "Tamil", "te": "Telugu",
    "mr": "Marathi", "bn": "Bengali", "ml": "Malayalam", "gu": "Gujarati", "pa": "Punjabi",
}  # fmt: skip


def _language_names(codes: tuple[str, ...]) -> str:
    return ", ".join(_LANGUAGE_NAMES.get(code.split("-")[0].lower(), code) for code in codes)


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; controls were removed before)."""
    return json.dumps(plain_text(text), ensure_ascii=False)


def default_greeting(name: str) -> str:
    return f"Hello, thank you for calling {name}! How can I help you?"


def _clean_greeting(draft: BusinessDraft) -> str:
    """One line without quotes, so greeting.py reads back exactly this text."""
    text = draft.greeting or default_greeting(draft.name)
    text = " ".join(plain_text(text, 300).split()).translate(str.maketrans("", "", '"“”«»'))
    return text.strip(" '‘’*_`") or default_greeting(draft.name).replace('"', "")


def _call_type_toml(ct: _CallType) -> list[str]:
    lines = [f"[call_types.{ct.name}]", f"description = {_q(ct.description)}", ""]
    lines.append(f"[call_types.{ct.name}.fields]")
    for name, kind, required, what in ct.fields:
        req = "true" if required else "false"
        lines.append(
            f"{name} = {{ type = {_q(kind)}, required = {req}, description = {_q(what)} }}"
        )
    return [*lines, ""]


_OWNER_VARIABLES = """variables = [
  "call.type",
  { from = "call.caller", default = "a hidden number" },
  { from = "call.time", default = "just now" },
  { from = "call.summary", default = "no summary, see the call log" },
]"""


def _actions_toml(types: tuple[_CallType, ...]) -> list[str]:
    lines = [
        "# ------------------------------------------------- WhatsApp after each call (MSG91)",
        "# TODO: have these templates approved at MSG91 under these names, or change them to",
        "# yours. The owner hears of every call but an enquiry; the caller gets a confirmation.",
        "",
        "[templates.owner_new_call]",
        'language = "en"',
        'text = "New {{1}} from {{2}} at {{3}}: {{4}}"',
        "",
        "[templates.request_received]",
        'language = "en"',
        'text = "Hi {{1}}, thank you for calling {{2}}! We have noted: {{3}}. {{4}}"',
        "",
    ]
    for ct in types:
        if ct.name == "enquiry":
            continue
        if ct.confirm:
            lines += [
                f"[[actions.{ct.name}]]",
                'to = "customer"',
                'template = "request_received"',
                f'when = {{ present = ["{ct.confirm}"] }}',
                "variables = [",
                '  { from = "details.name", default = "there" },',
                '  "business.name",',
                f'  {{ from = "details.{ct.confirm}", default = "your request" }},',
                '  { write = "One warm sentence saying we will confirm on WhatsApp soon", '
                'fallback = "We will confirm here on WhatsApp soon.", max_chars = 160 },',
                "]",
                "",
            ]
        lines += [f"[[actions.{ct.name}]]", 'to = "owner"', 'template = "owner_new_call"']
        lines += [*(["urgent = true"] if ct.name == "complaint" else []), _OWNER_VARIABLES, ""]
    return lines


def _tenant_toml(draft: BusinessDraft, types: tuple[_CallType, ...]) -> str:
    owner = draft.owner_phone or PLACEHOLDER_OWNER_PHONE
    lines = [
        "# Drafted by `receptionist tenants new` from a description. Check every value, then",
        "#     receptionist tenants validate <id>",
        "# The format is in tenants/README.md.",
        "",
        f"name = {_q(draft.name)}",
    ]
    if not draft.owner_phone:
        lines.append("# TODO: the owner's WhatsApp number (none was in the description)")
    lines += [
        f"owner_phone = {_q(owner)}",
        "languages = [" + ", ".join(_q(code) for code in draft.languages) + "]",
        'timezone = "Asia/Kolkata"',
        "",
    ]
    for ct in types:
        lines += _call_type_toml(ct)
    return "\n".join([*lines, *_actions_toml(types)]).rstrip() + "\n"


def _bullets(items: list[str] | tuple[str, ...]) -> str:
    return "".join(f"- {plain_text(item)}\n" for item in items)


def _assistant(draft: BusinessDraft, types: tuple[_CallType, ...]) -> str:
    where = f" ({plain_text(draft.address)})" if draft.address else ""
    tasks = "".join(f"{i}. {ct.task}\n" for i, ct in enumerate(types, 1))
    langs = _language_names(draft.languages)
    unknown = [
        what
        for what, have in (("prices", draft.prices), ("opening hours", draft.hours))
        if not have
    ]
    gap = (
        f"- The {' and '.join(unknown)} are not known yet: never guess them; say the owner will "
        "call back with them.\n"
        if unknown
        else ""
    )
    callers = (
        "\nWhat callers usually want\n" + _bullets(draft.callers_want) if draft.callers_want else ""
    )
    return (
        f"You are the receptionist of {plain_text(draft.name)}{where}. You answer its phone.\n\n"
        f'GREETING: "{_clean_greeting(draft)}"\n\n'
        "Style\n"
        "- Short, friendly answers: one or two sentences at a time. This is a phone call.\n"
        f"- Speak the caller's language ({langs}); mixing languages is fine.\n"
        '- Say prices in rupees plainly ("seven hundred and fifty rupees").\n\n'
        "Rules\n"
        "- Use only the business information below. If you do not know, say the owner will "
        "call back; do not make up prices, offers or availability.\n"
        f"{gap}\n"
        f"Tasks\n{tasks}"
        'Before ending, read the details back once and ask "Is that correct?". Then thank '
        f"them and say goodbye.\n{callers}"
    )


def _analyzer(draft: BusinessDraft, types: tuple[_CallType, ...]) -> str:
    choices = "".join(f"- {ct.name}: {ct.description}.\n" for ct in types)
    return (
        f"You are reading the transcript of a call to {plain_text(draft.name)}. The caller may "
        f"speak {_language_names(draft.languages)} or a mix.\n\n"
        f"Choose one call type:\n{choices}\n"
        "Extract the details for that type as confirmed in the call. Dates as YYYY-MM-DD, "
        'times as HH:MM (24-hour), resolving "tomorrow" from the call date. Phone numbers with '
        "+91. Omit anything the caller did not say.\n\n"
        "Summary: one line for the owner with who called, what they want and when.\n"
    )


def _inputs(draft: BusinessDraft) -> dict[str, str]:
    todo = "TODO: {what} were not in the description; add them here.\n"
    prices = (
        _bullets([f"{item}: ₹{price}" for item, price in draft.prices])
        if draft.prices
        else todo.format(what="prices")
    )
    hours = _bullets(draft.hours) if draft.hours else todo.format(what="opening hours")
    address = (
        f"{plain_text(draft.address)}\n"
        if draft.address
        else "TODO: the address was not in the description; add it here, with a landmark.\n"
    )
    files = {
        "input_files/prices.md": f"# Prices\n\n{prices}",
        "input_files/hours.md": f"# Opening hours\n\n{hours}",
        "input_files/address.md": f"# Address\n\n{address}",
    }
    if draft.notes:
        files["input_files/about.md"] = f"# About the business\n\n{_bullets(draft.notes)}"
    return files


def render_bundle(draft: BusinessDraft) -> TenantBundle:
    """The draft's files as a bundle (check it with loading.load_bundle before saving)."""
    types = _CATALOGUE.get(draft.kind, _CATALOGUE[GENERAL])
    files = {
        CONFIG_FILE: _tenant_toml(draft, types),
        ASSISTANT_PROMPT: _assistant(draft, types),
        ANALYZER_PROMPT: _analyzer(draft, types),
        **_inputs(draft),
    }
    return TenantBundle({path: text.encode("utf-8") for path, text in files.items()})
