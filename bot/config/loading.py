"""Reading feeds.yaml: YAML to validated Settings, every error located to file, line and field.

The CLI turns `ConfigError` into exit code 2."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from bot.config.cron import CronError, build_cron_trigger
from bot.config.errors import ConfigError, short_repr
from bot.config.schema import AdminCheck, Settings, TargetParser
from bot.config.yaml_reader import MAX_BYTES, YamlRefused, read_yaml

DEFAULT_CONFIG = "feeds.yaml"



def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == key:
                    # An unknown key is best reported at the key itself.
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _field_name(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _clean_pydantic_message(err: dict) -> str:
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        return "unknown key"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def _read_text(path: Path, shown: str) -> str:
    try:
        with path.open("rb") as f:
            # Read one byte past the limit, never the whole of an enormous (or endless) file.
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(shown, None, "", "config file not found (use --config or BRIEFBOT_CONFIG)") from None
    except OSError as exc:
        raise ConfigError(shown, None, "", f"cannot read config: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(shown, None, "", f"config file is larger than {MAX_BYTES // 1024} KiB; "
                                           "is this the right file?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(shown, line, "", "not UTF-8 text (save the file as UTF-8)") from None


def _read(path: Path, shown: str) -> tuple[yaml.Node | None, object]:
    """The YAML document: its node tree (to locate errors) and its data."""
    text = _read_text(path, shown)
    try:
        return read_yaml(text)
    except YamlRefused as exc:
        raise ConfigError(shown, None if exc.line is None else exc.line + 1, exc.field, exc.problem) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, yaml.constructor.ConstructorError):
            raise ConfigError(shown, line, "", problem) from None
        raise ConfigError(shown, line, "", f"YAML syntax error: {problem}") from None


def load_config(path: str | os.PathLike | None = None, parse_target: TargetParser | None = None,
                check_admin: AdminCheck | None = None) -> Settings:
    """Load and validate feeds.yaml; raises ConfigError naming file, line and field.

    `parse_target` validates each target with the adapter that owns its kind; `check_admin` each
    `admins` entry with the adapter of its platform."""
    path = Path(path or os.environ.get("BRIEFBOT_CONFIG") or DEFAULT_CONFIG)
    shown = str(path)
    root, data = _read(path, shown)
    if not isinstance(data, dict):
        raise ConfigError(shown, 1, "", "top level must be a mapping with topics:, feeds:, routes:")

    try:
        settings = Settings.model_validate(data, context={"parse_target": parse_target,
                                                                "check_admin": check_admin})
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        err = errors[0]
        # Annotated validators add the function name to loc for nested types; drop non-keys.
        loc = tuple(p for p in err["loc"] if isinstance(p, int) or not str(p).startswith("function-"))
        more = len(errors) - 1
        message = _clean_pydantic_message(err) + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        raise ConfigError(shown, _line_of(root, loc), _field_name(loc), message) from None

    problems = list(_cross_check(settings))
    if problems:
        loc, message = problems[0]
        raise ConfigError(shown, _line_of(root, loc), _field_name(loc), message)
    settings.source_path = path.resolve()
    return settings


def _cross_check(s: Settings):
    """References between sections: topics named by feeds/routes/digests must exist, names unique."""
    known = set(s.topics)
    for name, topic in s.topics.items():
        missing = [lang for lang in s.languages if lang not in topic.label]
        if missing:
            yield ("topics", name, "label"), f"missing label for language(s) {', '.join(missing)}"
    for section in ("feeds", "routes", "digests"):
        seen: set[str] = set()
        for i, entry in enumerate(getattr(s, section)):
            if entry.name in seen:
                yield (section, i, "name"), (f"duplicate name {short_repr(entry.name)}: "
                                             f"each {section[:-1]} needs its own")
            seen.add(entry.name)
            for j, topic in enumerate(entry.topics or []):
                if topic not in known:
                    yield (section, i, "topics", j), (f"unknown topic {short_repr(topic)} "
                                                      f"(known: {', '.join(sorted(known)[:20])})")
    for i, digest in enumerate(s.digests):
        try:
            build_cron_trigger(digest.cron, digest.timezone)
        except CronError as exc:
            field = "timezone" if "timezone" in str(exc) else "cron"
            yield ("digests", i, field), str(exc)
    try:
        ZoneInfo(s.timezone)
    except Exception:
        yield ("timezone",), f"unknown timezone {short_repr(s.timezone)} (use an IANA name like Asia/Shanghai)"


def modified_time(path: str | os.PathLike | None) -> float | None:
    """The config file's modification time, or None when there is no file to watch."""
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


def reload_settings(path: str | os.PathLike | None, parse_target: TargetParser | None, check_admin: AdminCheck | None,
                  log: logging.Logger) -> Settings | None:
    """feeds.yaml loaded again for a process already running on it, or None when it no longer loads:
    the problem is logged in one line and the caller keeps its last good settings."""
    try:
        return load_config(path, parse_target, check_admin)
    except ConfigError as exc:
        log.error("config reload failed, keeping the last good config: %s", exc)
    except Exception as exc:  # a reload must never take the running process down
        log.error("config reload failed, keeping the last good config: %s: %s: %s", path, type(exc).__name__,
                  str(exc)[:300])
    return None
