"""The one error a configuration problem raises: it names the file, the line and the field."""

from __future__ import annotations


class ConfigError(Exception):
    """A problem in feeds.yaml, located to file, line and field."""

    def __init__(self, path: str, line: int | None, field: str, message: str):
        self.path, self.line, self.field, self.message = path, line, field, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")
