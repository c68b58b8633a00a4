"""feeds.yaml as YAML, read so that no document can make reading slow or big.

A configuration file needs mappings, lists and plain values, and nothing else. Anchors and
aliases (the way an alias bomb multiplies a few hundred bytes into gigabytes), tags, merge
keys and complex keys are refused at the first one; a key given twice in one mapping is
refused at the second; nesting, the number of values, the length of one value and the size
of the file are capped. Every refusal says where (line) and what (field path).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (AliasEvent, MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent,
                         SequenceStartEvent)
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.resolver import Resolver

from bot.config.errors import short_repr

try:  # libyaml parses about four times faster; the pure-Python parser yields the same events.
    from yaml._yaml import CParser as _Parser  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]
    from yaml.reader import Reader as _Reader
    from yaml.scanner import Scanner as _Scanner
else:
    _Reader = _Scanner = None  # type: ignore[assignment,misc]

MAX_BYTES = 512 * 1024        # a thousand feeds take about 100 KB
MAX_DEPTH = 16                # feeds.yaml nests five levels deep at most
MAX_NODES = 30_000            # values, keys, lists and mappings (a thousand feeds: about 12,000)
MAX_SCALAR_CHARS = 8192       # the longest sensible value is a URL
MAX_NUMBER_CHARS = 40         # beyond this an integer is a typo (and int() would refuse it)

_PLAIN_TAGS = {None, "!"} | {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null",
                                                                       "seq", "map")}
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlRefused(Exception):
    """A document the reader will not take: where (0-based line), which field, and why."""

    def __init__(self, line: int | None, field: str, problem: str):
        super().__init__(problem)
        self.line, self.field, self.problem = line, field, problem


def _field(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


class _BoundedComposer(Composer):
    """PyYAML's composer with the refusals above; fed events by the parser it is mixed with."""

    def _init_bounds(self) -> None:
        self._path: list[str | int] = []
        self._nodes = 0

    def _refuse(self, mark: Any, problem: str, path: list[str | int] | None = None) -> YamlRefused:
        return YamlRefused(mark.line if mark is not None else None, _field(self._path if path is None else path),
                           problem)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise self._refuse(event.start_mark, f"YAML alias *{short_repr(event.anchor, 30)[1:-1]} is not "
                                                 "allowed: write the value out in full")
        if event.anchor is not None:
            raise self._refuse(event.start_mark, f"YAML anchor &{short_repr(event.anchor, 30)[1:-1]} is not "
                                                 "allowed: write the value out in full")
        if event.tag not in _PLAIN_TAGS:
            raise self._refuse(event.start_mark, f"YAML tag {short_repr(event.tag, 40)} is not allowed")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise self._refuse(event.start_mark, f"too many values (more than {MAX_NODES:,})")
        if isinstance(event, ScalarEvent):
            self._check_scalar(event)
        if isinstance(event, (SequenceStartEvent, MappingStartEvent)) and len(self._path) >= MAX_DEPTH:
            raise self._refuse(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
        return super().compose_node(parent, index)

    def _check_scalar(self, event: ScalarEvent) -> None:
        if len(event.value) > MAX_SCALAR_CHARS:
            raise self._refuse(event.start_mark, f"value is {len(event.value):,} characters long "
                                                 f"(at most {MAX_SCALAR_CHARS:,})")
        if (len(event.value) > MAX_NUMBER_CHARS
                and self.resolve(ScalarNode, event.value, event.implicit) == "tag:yaml.org,2002:int"):
            raise self._refuse(event.start_mark, f"number is {len(event.value)} digits long "
                                                 f"(at most {MAX_NUMBER_CHARS})")

    def compose_sequence_node(self, anchor: Any) -> Node:
        start = self.get_event()
        tag = start.tag if start.tag not in (None, "!") else self.resolve(yaml.SequenceNode, None, start.implicit)
        node = yaml.SequenceNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        while not self.check_event(SequenceEndEvent):
            self._path.append(len(node.value))
            node.value.append(self.compose_node(node, len(node.value)))
            self._path.pop()
        node.end_mark = self.get_event().end_mark
        return node

    def compose_mapping_node(self, anchor: Any) -> Node:
        start = self.get_event()
        tag = start.tag if start.tag not in (None, "!") else self.resolve(MappingNode, None, start.implicit)
        node = MappingNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        seen: set[str] = set()
        while not self.check_event(MappingEndEvent):
            if not self.check_event(ScalarEvent, AliasEvent):
                raise self._refuse(self.peek_event().start_mark, "a key must be plain text, not a list or mapping")
            key = self.compose_node(node, None)
            if key.tag == _MERGE_TAG:
                raise self._refuse(key.start_mark, "YAML merge keys (<<) are not allowed")
            if key.value in seen:
                raise self._refuse(key.start_mark, f"duplicate key {short_repr(key.value)}: it is already "
                                                   "set above in the same mapping", self._path + [key.value])
            seen.add(key.value)
            self._path.append(key.value)
            node.value.append((key, self.compose_node(node, key)))
            self._path.pop()
        node.end_mark = self.get_event().end_mark
        return node


class _PlainConstructor(SafeConstructor):
    """Plain values only: dates stay text (the schema has none), integers stay short."""

    def construct_yaml_int(self, node: ScalarNode) -> int:
        if len(node.value) > MAX_NUMBER_CHARS:
            raise ConstructorError(None, None, f"number is {len(node.value)} digits long "
                                               f"(at most {MAX_NUMBER_CHARS})", node.start_mark)
        return super().construct_yaml_int(node)

    def construct_yaml_timestamp(self, node: ScalarNode) -> str:  # type: ignore[override]
        return self.construct_scalar(node)


_PlainConstructor.add_constructor("tag:yaml.org,2002:int", _PlainConstructor.construct_yaml_int)
_PlainConstructor.add_constructor("tag:yaml.org,2002:timestamp", _PlainConstructor.construct_yaml_timestamp)


if _Reader is None:
    class _Loader(_BoundedComposer, _Parser, _PlainConstructor, Resolver):  # type: ignore[misc,valid-type]
        def __init__(self, text: str):
            _Parser.__init__(self, text)
            Composer.__init__(self)
            _PlainConstructor.__init__(self)
            Resolver.__init__(self)
            self._init_bounds()
else:  # pragma: no cover - depends on how PyYAML was built
    class _Loader(_Reader, _Scanner, _BoundedComposer, _Parser, _PlainConstructor, Resolver):  # type: ignore
        def __init__(self, text: str):
            _Reader.__init__(self, text)
            _Scanner.__init__(self)
            _Parser.__init__(self)
            Composer.__init__(self)
            _PlainConstructor.__init__(self)
            Resolver.__init__(self)
            self._init_bounds()


def read_yaml(text: str) -> tuple[Node | None, Any]:
    """The document's node tree (for locating errors) and its plain data.

    Raises YamlRefused for what the reader will not take, yaml.YAMLError for a syntax error."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        dispose = getattr(loader, "dispose", None)
        if dispose is not None:
            dispose()
    return root, data
