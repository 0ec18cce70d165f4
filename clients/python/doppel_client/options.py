"""Keyword options mapped onto request fields by their protobuf names."""

from __future__ import annotations

from typing import Any, Collection, Dict, Mapping, Type

from google.protobuf.message import Message


def request_options(message_type: Type[Message], options: Mapping[str, Any], *, reserved: Collection[str] = (),
                    caller: str) -> Dict[str, Any]:
    """The options that name fields of `message_type` (None values dropped, so they stay unset).

    Raises TypeError for a name that is no field, or one the helper sets itself (`reserved`).
    Values go to the message constructor as they are: dicts for messages, enum names as strings.
    """
    allowed = set(message_type.DESCRIPTOR.fields_by_name) - set(reserved)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"{caller}() got unknown option(s) {', '.join(unknown)}; "
                        f"fields of {message_type.DESCRIPTOR.name}: {', '.join(sorted(allowed))}")
    return {name: value for name, value in options.items() if value is not None}


def as_message(message_type: Type[Message], value: Any) -> Message:
    """`value` if it already is a `message_type`, else the message built from a dict of its fields."""
    if isinstance(value, message_type):
        return value
    if isinstance(value, Mapping):
        return message_type(**value)
    raise TypeError(f"expected a {message_type.DESCRIPTOR.name} or a dict of its fields, got {type(value).__name__}")
