"""Checks of tenant.toml's own values: the business, its languages and voice, budget, Exotel and
WhatsApp accounts, messages and call types. Each check reads what the owner wrote, reports what
is wrong on the report, and returns the cleaned value."""

from __future__ import annotations

import re
import zoneinfo
from decimal import Decimal
from typing import Any

from .action_checks import check_actions, check_templates
from .actions import WhatsAppSender
from .config_schema import BudgetConfig, ExotelConfig, allowed_keys, shape_problems
from .digest_checks import check_digest
from .handoff_checks import check_callbacks, check_handoff
from .messages import MESSAGE_KEYS
from .model import ENGINES, FIELD_TYPES, CallType, FieldSpec
from .recording_checks import check_recording
from .report import E164, Report, is_env_name, suggest, type_name
from .tool_checks import check_tools
from .webhook_checks import check_webhooks

__all__ = ["GEMINI_VOICES", "check_config"]

# Prebuilt voices of the Gemini Live API (checked unless the tenant uses the local engine).
GEMINI_VOICES: tuple[str, ...] = (
    "Achernar", "Achird", "Algenib", "Algieba", "Alnilam", "Aoede", "Autonoe", "Callirrhoe",
    "Charon", "Despina", "Enceladus", "Erinome", "Fenrir", "Gacrux", "Iapetus", "Kore",
    "Laomedeia", "Leda", "Orus", "Puck", "Pulcherrima", "Rasalgethi", "Sadachbia",
    "Sadaltager", "Schedar", "Sulafat", "Umbriel", "Vindemiatrix", "Zephyr", "Zubenelgenubi",
)  # fmt: skip

_BCP47 = re.compile(r"([a-zA-Z]{2,3})(?:-([a-zA-Z]{4}))?(?:-([a-zA-Z]{2}|\d{3}))?")
_SCHEMA_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_ACCOUNT_SID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")
_WA_NUMBER = re.compile(r"[1-9]\d{9,14}")  # MSG91's integrated_number: country code, no "+"
_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,100}")


def _canonical_language(code: str) -> str:
    m = _BCP47.fullmatch(code)
    assert m is not None
    lang, script, region = m.groups()
    out = lang.lower()
    if script:
        out += "-" + script.title()
    if region:
        out += "-" + region.upper()
    return out


def check_config(r: Report, config: dict[str, Any]) -> dict[str, Any] | None:
    """Validate the parsed tenant.toml; returns the cleaned values (or None on problems)."""
    before = len(r.problems)
    r.shape = shape_problems(config)
    r.check_shape(())
    out: dict[str, Any] = {}
    out["name"] = r.text_value(config, "name", ())
    out["owner_phone"] = _owner_phone(r, config)
    out["languages"] = check_languages(r, config)
    out["engine"], out["voice"] = _engine_and_voice(r, config)
    out["active"] = _active(r, config)
    out["timezone"] = _timezone(r, config)
    out["model"] = _model(r, config)
    out["exotel"] = check_exotel(r, config)
    out["budget"] = check_budget(r, config)
    out["messages"] = check_messages(r, config)
    out["call_types"] = check_call_types(r, config)
    out["whatsapp"] = check_whatsapp(r, config)
    out["templates"] = check_templates(r, config)
    out["actions"] = check_actions(r, config, out["templates"])
    out["digest"] = check_digest(r, config, out["templates"])
    out["webhooks"] = check_webhooks(r, config)
    out["tools"] = check_tools(r, config, out["timezone"])
    out["handoff"] = check_handoff(r, config, out["timezone"], out["templates"])
    out["callbacks"] = check_callbacks(r, config, out["timezone"], out["handoff"])
    out["recording"] = check_recording(r, config)
    r.flush_shape()
    return out if len(r.problems) == before else None


def _owner_phone(r: Report, config: dict[str, Any]) -> str | None:
    phone = r.text_value(config, "owner_phone", ())
    if phone is None:
        return None
    compact = re.sub(r"[\s\-().]", "", phone)
    if not E164.fullmatch(compact):
        r.add_config(
            ("owner_phone",),
            f'owner_phone must be E.164 (+ and 8-15 digits), e.g. "+919800000001"; got {phone!r}',
        )
    return compact


def _engine_and_voice(r: Report, config: dict[str, Any]) -> tuple[str | None, str | None]:
    engine = None
    if "engine" in config:
        engine = r.text_value(config, "engine", ())
        if engine is not None and engine not in ENGINES:
            r.add_config(
                ("engine",),
                f"engine must be one of {', '.join(repr(e) for e in ENGINES)}; got {engine!r}"
                f"{suggest(engine, ENGINES)}",
            )
    voice = r.text_value(config, "voice", ()) if "voice" in config else None
    if voice is not None and engine != "local":  # the local engine has voices of its own
        known = {v.lower(): v for v in GEMINI_VOICES}
        if voice.lower() in known:
            voice = known[voice.lower()]
        else:
            r.add_config(
                ("voice",),
                f"voice {voice!r} is not a Gemini voice"
                f"{suggest(voice.title(), GEMINI_VOICES)}"
                f" (choose one of: {', '.join(GEMINI_VOICES)})",
            )
    return engine, voice


def _active(r: Report, config: dict[str, Any]) -> bool:
    active = config.get("active", True)
    if not isinstance(active, bool):
        r.add_config(("active",), f"active must be true or false, not {type_name(active)}")
        return True
    return active


def _timezone(r: Report, config: dict[str, Any]) -> str:
    timezone = "Asia/Kolkata"
    if "timezone" in config:
        timezone = r.text_value(config, "timezone", ()) or timezone
        try:
            zoneinfo.ZoneInfo(timezone)
        except Exception:
            r.add_config(
                ("timezone",),
                f'timezone {timezone!r} is not a known time zone (e.g. "Asia/Kolkata")',
            )
    return timezone


def _model(r: Report, config: dict[str, Any]) -> str | None:
    model = r.text_value(config, "model", ()) if "model" in config else None
    if model is not None and not _MODEL_NAME.fullmatch(model):
        r.add_config(("model",), f"model {model!r} is not a valid model name")
    return model


def check_languages(r: Report, config: dict[str, Any]) -> tuple[str, ...]:
    if "languages" not in config:
        return ()
    value = config["languages"]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        r.add_config(
            ("languages",),
            'languages must be a non-empty list like ["en-IN", "hi-IN"] '
            "(the first is the main language)",
        )
        return ()
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            r.add_config(("languages",), f"languages entries must be text, not {type_name(item)}")
            continue
        if not _BCP47.fullmatch(item.strip()):
            hint = ""
            if "_" in item and _BCP47.fullmatch(item.strip().replace("_", "-")):
                hint = f"; write {item.strip().replace('_', '-')!r}"
            r.add_config(
                ("languages",),
                f'language {item!r} is not a BCP-47 code like "hi-IN"{hint}',
            )
            continue
        code = _canonical_language(item.strip())
        if code in out:
            r.add_config(("languages",), f"language {code!r} is listed twice")
            continue
        out.append(code)
    return tuple(out)


def check_budget(r: Report, config: dict[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    table = r.table_value(config, "budget", ())
    if table is None:
        return None, None
    path = ("budget",)
    r.check_shape(path)
    values: dict[str, Decimal | None] = {}
    for key in allowed_keys(BudgetConfig):
        raw = table.get(key)
        if raw is None:
            values[key] = None
        elif isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
            r.add_config((*path, key), f"budget.{key} must be a number of US dollars >= 0")
            values[key] = None
        else:
            values[key] = Decimal(str(raw))
    warn, limit = values["monthly_usd_warn"], values["monthly_usd_limit"]
    if warn is not None and limit is not None and warn > limit:
        r.add_config(path, "budget.monthly_usd_warn must not exceed monthly_usd_limit")
    return warn, limit


def check_exotel(r: Report, config: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(auth_user_env, auth_token_env, account_sid): the business's own Exotel account, when it
    has one (its key and token by the NAMES of environment variables, its account sid as text)."""
    table = r.table_value(config, "exotel", ())
    if table is None:
        return None, None, None
    path = ("exotel",)
    r.check_shape(path)
    names: dict[str, str | None] = {}
    for key in allowed_keys(ExotelConfig):
        value = r.text_value(table, key, path)
        if key == "account_sid":
            if value is not None and not _ACCOUNT_SID.fullmatch(value):
                r.add_config(
                    (*path, key), "exotel.account_sid must be letters, digits, _ or - (1-128)"
                )
                value = None
        elif value is not None and not is_env_name(value):
            r.add_config(
                (*path, key),
                f"exotel.{key} must be the NAME of an environment variable in capitals "
                f'(e.g. "BAKERY_EXOTEL_TOKEN"), never the key or token itself',
            )
            value = None
        names[key] = value
    user_present = "auth_user_env" in table
    token_present = "auth_token_env" in table
    if user_present != token_present:
        missing = "auth_token_env" if user_present else "auth_user_env"
        present = "auth_user_env" if user_present else "auth_token_env"
        r.add_config(
            path,
            f"exotel.{present} is set but exotel.{missing} is not: give both or neither",
        )
    if "account_sid" in table and not user_present:
        r.add_config(path, "exotel.account_sid needs the account's auth_user_env/auth_token_env")
    return names.get("auth_user_env"), names.get("auth_token_env"), names.get("account_sid")


def check_messages(r: Report, config: dict[str, Any]) -> dict[str, str]:
    table = r.table_value(config, "messages", ())
    if table is None:
        return {}
    path = ("messages",)
    r.check_shape(path)
    out: dict[str, str] = {}
    for key in MESSAGE_KEYS:
        value = r.text_value(table, key, path)
        if value is not None:
            out[key] = value
    return out


def check_call_types(r: Report, config: dict[str, Any]) -> tuple[CallType, ...]:
    if "call_types" not in config:
        return ()
    table = r.table_value(config, "call_types", ())
    if table is None:
        return ()
    if not table:
        r.add_config(
            ("call_types",),
            "call_types is empty: add at least one [call_types.<name>] table",
        )
        return ()
    out: list[CallType] = []
    for ct_name, ct in table.items():
        path = ("call_types", ct_name)
        if not _SCHEMA_NAME.fullmatch(ct_name):
            r.add_config(
                path,
                f"call type name {ct_name!r} must be lowercase letters, digits and '_', "
                "starting with a letter (e.g. custom_cake)",
            )
        if not isinstance(ct, dict):
            r.add_config(
                path,
                f"call_types.{ct_name} must be a table ([call_types.{ct_name}]), "
                f"not {type_name(ct)}",
            )
            continue
        r.check_shape(path)
        description = r.text_value(ct, "description", path)
        fields: list[FieldSpec] = []
        field_table = r.table_value(ct, "fields", path)
        for field_name, spec in (field_table or {}).items():
            checked = check_field(r, (*path, "fields", field_name), field_name, spec)
            if checked is not None:
                fields.append(checked)
        callback = r.bool_value(ct, "callback", path)
        out.append(CallType(ct_name, description or "", tuple(fields), callback=callback))
    return tuple(out)


def check_field(r: Report, path: tuple[str, ...], name: str, spec: object) -> FieldSpec | None:
    dotted = ".".join(path)
    ok = True
    if not _SCHEMA_NAME.fullmatch(name):
        r.add_config(
            path,
            f"field name {name!r} in {'.'.join(path[:2])} must be lowercase letters, digits "
            "and '_', starting with a letter (e.g. delivery_address)",
        )
        ok = False
    if isinstance(spec, str):  # shorthand: phone = "phone"
        spec = {"type": spec}
    if not isinstance(spec, dict):
        r.add_config(
            path,
            f'{dotted} must be a table like {{ type = "string", required = true, '
            f'description = "..." }}, not {type_name(spec)}',
        )
        return None
    r.check_shape(path)
    ftype = spec.get("type")
    if ftype is None:  # reported by the model (config_schema.FieldConfig)
        ok = False
    elif not isinstance(ftype, str) or ftype.strip().lower() not in FIELD_TYPES:
        shown = ftype if isinstance(ftype, str) else type_name(ftype)
        r.add_config(
            (*path, "type"),
            f"{dotted}.type {shown!r} is not a field type"
            f"{suggest(str(ftype).lower(), FIELD_TYPES)} "
            f"(use one of {', '.join(FIELD_TYPES)})",
        )
        ok = False
    required = spec.get("required", False)
    if not isinstance(required, bool):
        r.add_config(
            (*path, "required"),
            f"{dotted}.required must be true or false, not {type_name(required)}",
        )
        ok = False
    description = spec.get("description", "")
    if not isinstance(description, str):
        r.add_config(
            (*path, "description"),
            f"{dotted}.description must be text in quotes, not {type_name(description)}",
        )
        ok = False
    if not ok:
        return None
    assert isinstance(ftype, str)
    return FieldSpec(name, ftype.strip().lower(), required, description.strip())


def check_whatsapp(r: Report, config: dict[str, Any]) -> WhatsAppSender | None:
    table = r.table_value(config, "whatsapp", ())
    if table is None:
        return None
    path = ("whatsapp",)
    r.check_shape(path)
    number: str | None = None
    raw = table.get("integrated_number")
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)  # integrated_number = 919800000009 without quotes
        table = {**table, "integrated_number": raw}
    if raw is not None:
        value = r.text_value(table, "integrated_number", path)
        if value is not None:
            digits = re.sub(r"[\s-]", "", value).removeprefix("+")
            if _WA_NUMBER.fullmatch(digits):
                number = digits
            else:
                r.add_config(
                    (*path, "integrated_number"),
                    "whatsapp.integrated_number must be the WhatsApp sender number with its "
                    f'country code, 10-15 digits (e.g. "919800000009"); got {value!r}',
                )
    namespace = r.text_value(table, "namespace", path)
    if namespace is not None and not _NAMESPACE.fullmatch(namespace):
        r.add_config(
            (*path, "namespace"),
            "whatsapp.namespace must be the template namespace shown at MSG91 (letters, "
            f"digits, '_' and '-'); got {namespace!r}",
        )
        namespace = None
    key_env = r.text_value(table, "auth_key_env", path)
    if key_env is not None and not is_env_name(key_env):
        r.add_config(
            (*path, "auth_key_env"),
            "whatsapp.auth_key_env must be the NAME of an environment variable in capitals "
            '(e.g. "BAKERY_MSG91_AUTHKEY"), never the auth key itself',
        )
        key_env = None
    if number is None and namespace is None and key_env is None:
        return None
    return WhatsAppSender(integrated_number=number, namespace=namespace, auth_key_env=key_env)
