"""The one error a configuration problem raises: it names the file, the line and the field."""

from __future__ import annotations

# An error line quotes at most this much of what the user wrote: a value may be a whole
# document's worth of text, and the line is read by a person.
MAX_MESSAGE_CHARS = 300


def short_repr(value: object, limit: int = 60) -> str:
    """A quotation of a user value for an error line, never longer than `limit`.

    Only strings and numbers are quoted; anything else is named by its type, so a huge or
    nested structure is never formatted in full."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        if isinstance(value, str) and len(value) > limit:
            return repr(value[:limit]) + f"… ({len(value)} characters)"
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
            return "a number too large to show"
        text = repr(value)
        return text if len(text) <= limit else text[:limit] + "…"
    return type_name(value)


def type_name(value: object) -> str:
    names = {dict: "a mapping", list: "a list", tuple: "a list", str: "text", bool: "true/false",
             int: "a number", float: "a number", type(None): "nothing (null)"}
    return names.get(type(value), f"a {type(value).__name__}")


def clip(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return message if len(message) <= limit else message[:limit] + "…"


class ConfigError(Exception):
    """A problem in feeds.yaml, located to file, line and field."""

    def __init__(self, path: str, line: int | None, field: str, message: str):
        message, field = clip(" ".join(message.split())), clip(field, 120)
        self.path, self.line, self.field, self.message = path, line, field, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")
