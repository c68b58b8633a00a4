"""Editable prompt files: `prompts/<name>.md` with a version and `## system` / `## user` parts.

Format (documented for users in prompts/README.md):

    ---
    version: brief-3
    ---
    Free text here is a note for editors and is never sent.

    ## system
    You write ... {languages} ...

    ## user
    <article>
    {article_text}
    </article>

`{name}` (letters, digits, underscore) is a placeholder; any other brace — such as a JSON
example `{"relevant": true}` — is literal text, so prompts can show JSON without escaping.
The version is part of the LLM cache key: bump it when a change should re-summarise content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

from bot.config import LLMConfig, Settings

PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FRONT_MATTER_RE = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_SECTION_RE = re.compile(r"^##[ \t]+(system|user)[ \t]*$", re.I | re.M)

# Prompts shipped with briefbot, used when the configured directory is the default and lacks a file
# (e.g. feeds.yaml lives elsewhere than the checkout): an installed wheel carries them as
# bot/prompts/ (setup.py copies them there); a checkout has them at the top of the repository.
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
BUILTIN_PROMPTS_DIRS = (_PACKAGE_DIR / "prompts", _PACKAGE_DIR.parent / "prompts")


class PromptError(Exception):
    """A prompt file is missing or malformed, or a placeholder has no value; names the file."""


class RenderedPrompt(NamedTuple):
    system: str
    user: str


@dataclass(frozen=True)
class Prompt:
    name: str
    path: Path
    version: str
    system: str
    user: str

    @property
    def placeholders(self) -> set[str]:
        return set(PLACEHOLDER_RE.findall(self.system)) | set(PLACEHOLDER_RE.findall(self.user))

    def render(self, **variables: object) -> RenderedPrompt:
        """Fill placeholders in one pass, so text inside a value (an article containing
        "{title}") is never expanded again."""
        missing = sorted(self.placeholders - set(variables))
        if missing:
            raise PromptError(f"prompt {self.path}: no value for placeholder(s) "
                              + ", ".join("{" + m + "}" for m in missing))

        def fill(template: str) -> str:
            return PLACEHOLDER_RE.sub(lambda m: str(variables[m.group(1)]), template)

        return RenderedPrompt(fill(self.system), fill(self.user))


def parse_prompt(text: str, path: Path, name: str | None = None) -> Prompt:
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        raise PromptError(f"prompt {path}: must start with a front matter block (---, version: ..., ---)")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise PromptError(f"prompt {path}: front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict) or meta.get("version") in (None, ""):
        raise PromptError(f"prompt {path}: front matter needs a 'version:' (part of the LLM cache key)")
    body = text[match.end():]
    sections: dict[str, str] = {}
    heads = list(_SECTION_RE.finditer(body))
    for i, head in enumerate(heads):
        part = head.group(1).lower()
        if part in sections:
            raise PromptError(f"prompt {path}: more than one '## {part}' section")
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        sections[part] = body[head.end():end].strip("\r\n")
    for part in ("system", "user"):
        if not sections.get(part, "").strip():
            raise PromptError(f"prompt {path}: missing or empty '## {part}' section")
    return Prompt(name=name or path.stem, path=path, version=str(meta["version"]).strip(),
                  system=sections["system"].strip(), user=sections["user"].strip())


def prompt_path(name: str, settings: Settings) -> Path:
    if not re.fullmatch(r"[\w.-]+", name):
        raise PromptError(f"invalid prompt name {name!r}")
    filename = name if name.endswith(".md") else f"{name}.md"
    configured = settings.resolve_path(settings.llm.prompts_dir) / filename
    default_dir = LLMConfig.model_fields["prompts_dir"].default
    if not configured.exists() and settings.llm.prompts_dir == default_dir:
        for builtin_dir in BUILTIN_PROMPTS_DIRS:
            if (builtin_dir / filename).exists():
                return builtin_dir / filename
    return configured


def load_prompt(name: str, settings: Settings) -> Prompt:
    """Read `<prompts_dir>/<name>.md`; errors name the file."""
    path = prompt_path(name, settings)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"prompt file {path} not found (llm.prompts_dir = {settings.llm.prompts_dir!r})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"prompt file {path}: cannot read: {exc}") from None
    return parse_prompt(text, path, name.removesuffix(".md"))
