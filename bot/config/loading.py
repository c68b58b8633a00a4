"""Reading feeds.yaml: YAML to validated Settings, every error located to file, line and field.

The CLI turns `ConfigError` into exit code 2."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from bot.config.cron import CronError, build_cron_trigger
from bot.config.errors import ConfigError
from bot.config.schema import Settings, TargetParser

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


def load_config(path: str | os.PathLike | None = None, parse_target: TargetParser | None = None) -> Settings:
    """Load and validate feeds.yaml; raises ConfigError naming file, line and field.

    `parse_target` validates each target with the adapter that owns its kind."""
    path = Path(path or os.environ.get("BRIEFBOT_CONFIG") or DEFAULT_CONFIG)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(shown, None, "", "config file not found (use --config or BRIEFBOT_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(shown, None, "", f"cannot read config: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(shown, line, "", f"YAML syntax error: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(shown, 1, "", "top level must be a mapping with topics:, feeds:, routes:")

    try:
        settings = Settings.model_validate(data, context={"parse_target": parse_target})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        # Annotated validators add the function name to loc for nested types; drop non-keys.
        loc = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith("function-"))
        more = len(exc.errors()) - 1
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
                yield (section, i, "name"), f"duplicate name {entry.name!r}"
            seen.add(entry.name)
            for j, topic in enumerate(entry.topics or []):
                if topic not in known:
                    yield (section, i, "topics", j), f"unknown topic {topic!r} (known: {', '.join(sorted(known))})"
    for i, digest in enumerate(s.digests):
        try:
            build_cron_trigger(digest.cron, digest.timezone)
        except CronError as exc:
            field = "timezone" if "timezone" in str(exc) else "cron"
            yield ("digests", i, field), str(exc)
    try:
        ZoneInfo(s.timezone)
    except Exception:
        yield ("timezone",), f"unknown timezone {s.timezone!r} (use an IANA name like Asia/Shanghai)"
