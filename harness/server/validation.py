"""Request validation from the spec, reporting every problem at once with FastAPI-style `loc` (D2).

Connexion validates against openapi.yaml; these subclasses only change how failures are reported:
a body that is not JSON is a 400, a JSON body or parameter that breaks the schema is a 422 with one
`errors[]` entry per problem.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import Any

from connexion.json_schema import Draft4RequestValidator
from connexion.lifecycle import ConnexionRequest
from connexion.utils import is_null, is_nullable
from connexion.validators import JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, FormatChecker, ValidationError
from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from harness.server.errors import APIError, validation_error
from harness.spans.otlp import escapes_unpaired_surrogate

FORMAT_CHECKER = FormatChecker()
"""Every format the contract uses, checked for real (Draft 4's own checker skips `uuid`)."""


@FORMAT_CHECKER.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    uuid.UUID(value)
    return len(value) == 36


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return "T" in value.upper() and parsed.tzinfo is not None


def _not_json_constant(name: str) -> Any:
    """Python's json reads NaN, Infinity and -Infinity; JSON has no such values, and echoing them back
    would make every response that holds the item unreadable to a strict parser (JSON.parse)."""
    raise APIError(400, f"Request body is not valid JSON: {name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: valid JSON grammar, but it would be stored and served as Infinity
        raise APIError(400, f"Request body holds a number out of range: {text[:40]}")
    return value


_TYPE_NAMES = {"integer": "int", "number": "float", "boolean": "bool", "string": "string", "array": "list",
               "object": "dict"}


def _error_type(error: ValidationError) -> str:
    """A FastAPI/pydantic-like machine-readable name for a JSON Schema failure."""
    kind = str(error.validator)
    if kind == "required":
        return "missing"
    if kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, str) else "value"
        return f"{_TYPE_NAMES.get(expected, expected)}_type"
    return {
        "maxLength": "string_too_long",
        "minLength": "string_too_short",
        "pattern": "string_pattern_mismatch",
        "enum": "enum",
        "format": f"{error.validator_value}_parsing",
        "maxItems": "too_long",
        "minItems": "too_short",
        "maximum": "less_than_equal",
        "minimum": "greater_than_equal",
        "exclusiveMaximum": "less_than",
        "exclusiveMinimum": "greater_than",
        "additionalProperties": "extra_forbidden",
    }.get(kind, "value_error")


def _entries(errors: list[ValidationError], prefix: list[str | int]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for error in errors:
        loc: list[str | int] = [*prefix, *error.absolute_path]
        msg = error.message
        if error.validator == "required" and "'" in error.message:
            loc.append(error.message.split("'")[1])
            msg = "Field required"
        entries.append({"loc": loc, "msg": msg, "type": _error_type(error)})
    entries.sort(key=lambda e: [str(part) for part in e["loc"]])
    return entries


def missing_body() -> APIError:
    return validation_error([{"loc": ["body"], "msg": "Field required", "type": "missing"}])


class BodyValidator(JSONRequestBodyValidator):  # type: ignore[misc]
    """JSON bodies: 400 for what is not JSON, 422 listing every schema violation."""

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        if self._required and not int(Headers(scope=scope).get("content-length", "0") or 0):
            raise missing_body()
        result: tuple[Receive, Scope] = await super().wrap_receive(receive, scope=scope)
        return result

    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        raw = b"".join([chunk async for chunk in stream])
        if not raw.strip():
            return None
        try:
            text = raw.decode(self._encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise APIError(400, f"Request body is not valid {self._encoding} text") from exc
        try:
            body = json.loads(text, parse_constant=_not_json_constant, parse_float=_finite_float)
        except json.JSONDecodeError as exc:
            raise APIError(400, f"Request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                                f"column {exc.colno}") from exc
        except RecursionError as exc:
            raise APIError(400, "Request body is nested too deeply") from exc
        except ValueError as exc:  # an integer literal past Python's digit limit
            raise APIError(400, "Request body holds a number too large to represent") from exc
        if escapes_unpaired_surrogate(text, body):
            raise APIError(400, "Request body is not valid Unicode text: it escapes an unpaired UTF-16 surrogate")
        return body

    def _validate(self, body: Any) -> dict[str, Any] | None:
        if body is None:
            if self._nullable:
                return None
            raise missing_body()
        validator = Draft4RequestValidator(self._schema, format_checker=FORMAT_CHECKER)
        try:
            errors = list(validator.iter_errors(body))
        except RecursionError as exc:
            raise APIError(400, "Request body is nested too deeply") from exc
        if errors and self._schema.get("x-invalid-status") == 400:  # a protocol of its own (OTLP/HTTP): bad data
            first = errors[0]
            where = ".".join(str(p) for p in first.absolute_path) or "the body"
            raise APIError(400, f"The body is not a valid request at {where}: {first.message}")
        if errors:
            raise validation_error(_entries(errors, ["body"]))
        return None


class ParametersValidator(ParameterValidator):  # type: ignore[misc]
    """Path, query and header parameters: every violation reported, each with its `loc`."""

    def validate_request(self, request: ConnexionRequest) -> None:
        entries: list[dict[str, Any]] = []
        getters: dict[str, Callable[[dict[str, Any]], Any]] = {
            "query": lambda p: request.query_params.get(p["name"]),
            "path": lambda p: request.path_params.get(p["name"].replace("-", "_")),
            "header": lambda p: request.headers.get(p["name"]),
        }
        for where, getter in getters.items():
            for param in self.parameters.get(where, []):
                try:
                    value = getter(param)
                except (ValueError, TypeError):
                    entries.append({"loc": [where, param["name"]], "msg": "Invalid value", "type": "value_error"})
                    continue
                if value is None:
                    if param.get("required"):
                        entries.append({"loc": [where, param["name"]], "msg": "Field required", "type": "missing"})
                    continue
                if is_nullable(param) and is_null(value):
                    continue
                schema = param.get("schema", param)
                errors = list(Draft4Validator(schema, format_checker=FORMAT_CHECKER)
                              .iter_errors(value))
                entries.extend(_entries(errors, [where, param["name"]]))
        if entries:
            raise validation_error(entries)


VALIDATOR_MAP: dict[str, Any] = {
    "parameter": ParametersValidator,
    "body": {"*/*json": BodyValidator},
}
