"""How the MSG91 double checks a bulk template request the way MSG91 does."""

from __future__ import annotations

from typing import Any

import phonenumbers

from receptionist.sim.msg91.model import COMPONENT_KEY, MAX_VARIABLE_CHARS, BadRequest, Parsed

# ---------------------------------------------------------------- validation


def _digits_number(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise BadRequest(f"{what} must be a string of digits with country code, got {value!r}")
    try:
        number = phonenumbers.parse("+" + value, None)
    except phonenumbers.NumberParseException:
        raise BadRequest(f"{what} {value} is not a valid number with country code") from None
    if not phonenumbers.is_valid_number(number):
        raise BadRequest(f"{what} {value} is not a valid number with country code")
    return value


def _variables(components: Any, where: str) -> tuple[str, ...]:
    if components is None:
        return ()
    if not isinstance(components, dict):
        raise BadRequest(f"{where}.components must be an object")
    body: dict[int, str] = {}
    for key, component in components.items():
        m = COMPONENT_KEY.match(key)
        if m is None:
            raise BadRequest(f"{where}.components: unknown component {key!r}")
        if not isinstance(component, dict):
            raise BadRequest(f"{where}.components.{key} must be an object")
        if m[1] != "body":
            continue  # header/button parameters: not used by our templates, not checked
        if component.get("type") != "text":
            raise BadRequest(f"{where}.components.{key}.type must be 'text'")
        value = component.get("value")
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(f"{where}.components.{key}.value must be a non-empty string")
        if len(value) > MAX_VARIABLE_CHARS:
            raise BadRequest(
                f"{where}.components.{key}.value is longer than {MAX_VARIABLE_CHARS} characters"
            )
        if "\n" in value or "\t" in value or "     " in value:
            raise BadRequest(
                f"{where}.components.{key}.value has new lines, tabs or more than 4 "
                "consecutive spaces"
            )
        body[int(m[2])] = value
    if sorted(body) != list(range(1, len(body) + 1)):
        raise BadRequest(f"{where}.components: body variables must be body_1..body_n")
    return tuple(body[i] for i in range(1, len(body) + 1))


def parse_request(data: Any) -> Parsed:
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    integrated = _digits_number(data.get("integrated_number"), "integrated_number")
    if data.get("content_type") != "template":
        raise BadRequest("content_type must be 'template' on this endpoint")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise BadRequest("payload must be an object")
    if payload.get("messaging_product", "whatsapp") != "whatsapp":
        raise BadRequest("payload.messaging_product must be 'whatsapp'")
    if payload.get("type", "template") != "template":
        raise BadRequest("payload.type must be 'template'")
    template = payload.get("template")
    if not isinstance(template, dict):
        raise BadRequest("payload.template must be an object")
    name = template.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("payload.template.name is required")
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str) or not code.strip():
        raise BadRequest("payload.template.language.code is required")
    if isinstance(language, dict) and language.get("policy", "deterministic") != "deterministic":
        raise BadRequest("payload.template.language.policy must be 'deterministic'")
    namespace = template.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise BadRequest("payload.template.namespace must be a string")
    items = template.get("to_and_components")
    if not isinstance(items, list) or not items:
        raise BadRequest("payload.template.to_and_components must be a non-empty list")
    recipients: list[tuple[str, tuple[str, ...]]] = []
    for i, item in enumerate(items):
        where = f"to_and_components[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object")
        to = item.get("to")
        if not isinstance(to, list) or not to:
            raise BadRequest(f"{where}.to must be a non-empty list of numbers")
        variables = _variables(item.get("components"), where)
        for number in to:
            recipients.append((_digits_number(number, f"{where}.to"), variables))
    return Parsed(integrated, name, code, namespace or None, recipients)
