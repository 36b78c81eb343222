"""Reading one template file: its channel and, per locale, the source of each part.

The file is composed with PyYAML's node API rather than loaded, so every problem can name
the line it is on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import yaml

from message_templates.errors import InvalidTemplateError

# Per channel: the parts every locale must have, then the parts it may have.
CHANNEL_PARTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "sms": (frozenset({"body"}), frozenset()),
    "push": (frozenset({"title", "body"}), frozenset({"link"})),
    "email": (frozenset({"subject", "html", "text"}), frozenset({"preheader"})),
}
TOP_LEVEL_KEYS = ("channel", "description", "locales")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")
_STR_TAG = "tag:yaml.org,2002:str"

_Pairs = dict[str, tuple[yaml.Node, yaml.Node]]


@dataclass(frozen=True)
class PartSource:
    """The Jinja source of one part and where it sits in the file.

    Attributes:
        source: The template text.
        line: The file line (1-based) of the text's first line.
        exact: Whether template line ``n`` is file line ``line + n - 1`` (true for ``|``
            blocks and one-line values; folded or escaped text moves lines around).
    """

    source: str
    line: int
    exact: bool

    def file_line(self, template_line: int | None) -> int:
        """The file line of a template line, as near as the YAML style allows."""
        if template_line is None or not self.exact:
            return self.line
        return self.line + template_line - 1


@dataclass(frozen=True)
class TemplateSpec:
    """One template file, checked for shape but not yet compiled."""

    name: str
    path: Path
    channel: str
    description: str | None
    locales: dict[str, dict[str, PartSource]]


def normalize_locale(locale: str) -> str:
    """Compare locales case-blind and with ``_`` or ``-`` alike: ``zh_CN`` is ``zh-cn``."""
    return locale.replace("_", "-").lower()


def read_template_file(path: Path, *, name: str) -> TemplateSpec:
    """Read and check the structure of one template file.

    Args:
        path: The ``<name>.yaml`` file.
        name: The template name.

    Returns:
        The channel, description and per-locale part sources.

    Raises:
        InvalidTemplateError: The file is not UTF-8 YAML of the expected shape; the message
            names the file, the line and the key path.
    """
    return _Reader(path, name).read()


class _Reader:
    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name

    def fail(self, problem: str, node: yaml.Node | None, key: str | None = None) -> NoReturn:
        raise InvalidTemplateError(
            f"{key}: {problem}" if key else problem,
            template=self.name,
            file=self.path,
            line=node.start_mark.line + 1 if node is not None else None,
        )

    def read(self) -> TemplateSpec:
        root = self.compose()
        if not isinstance(root, yaml.MappingNode):
            self.fail("the file must be a mapping with 'channel' and 'locales'", root)
        top = self.pairs(root, None)
        for key, (key_node, _) in top.items():
            if key not in TOP_LEVEL_KEYS:
                self.fail(f"unknown field (expected {', '.join(TOP_LEVEL_KEYS)})", key_node, key)
        if "channel" not in top:
            self.fail("missing 'channel' (sms, email or push)", root)
        channel_node = top["channel"][1]
        channel = self.text(channel_node, "channel")
        if channel not in CHANNEL_PARTS:
            self.fail(f"unknown channel {channel!r} (sms, email or push)", channel_node, "channel")
        description = (
            self.text(top["description"][1], "description") if "description" in top else None
        )
        if "locales" not in top:
            self.fail("missing 'locales'", root)
        return TemplateSpec(
            name=self.name,
            path=self.path,
            channel=channel,
            description=description,
            locales=self.locales(top["locales"][1], channel),
        )

    def compose(self) -> yaml.Node | None:
        try:
            return yaml.compose(self.path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except UnicodeDecodeError as exc:
            self.fail(f"not UTF-8 text ({exc.reason})", None)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise InvalidTemplateError(
                f"not valid YAML: {exc.problem or exc.context}",
                template=self.name,
                file=self.path,
                line=mark.line + 1 if mark is not None else None,
            ) from exc
        except yaml.YAMLError as exc:
            self.fail(f"not valid YAML: {exc}", None)

    def locales(self, node: yaml.Node, channel: str) -> dict[str, dict[str, PartSource]]:
        if not isinstance(node, yaml.MappingNode) or not node.value:
            self.fail("must map at least one locale to its parts", node, "locales")
        required, optional = CHANNEL_PARTS[channel]
        expected = _expected(channel)
        result: dict[str, dict[str, PartSource]] = {}
        seen: set[str] = set()
        for locale, (locale_node, parts_node) in self.pairs(node, "locales").items():
            key = f"locales.{locale}"
            if not _LOCALE.fullmatch(locale):
                self.fail("not a locale tag like zh-CN or en", locale_node, key)
            if normalize_locale(locale) in seen:
                self.fail("the same locale is listed twice", locale_node, key)
            seen.add(normalize_locale(locale))
            if not isinstance(parts_node, yaml.MappingNode):
                self.fail(f"must map parts to text ({expected})", parts_node, key)
            parts = self.pairs(parts_node, key)
            for part, (part_node, _) in parts.items():
                if part not in required | optional:
                    self.fail(f"unknown part ({expected})", part_node, f"{key}.{part}")
            for part in sorted(required - parts.keys()):
                self.fail(f"missing '{part}' ({expected})", locale_node, key)
            result[locale] = {
                part: self.part(value, f"{key}.{part}") for part, (_, value) in parts.items()
            }
        return result

    def pairs(self, node: yaml.MappingNode, key: str | None) -> _Pairs:
        result: _Pairs = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail("keys must be plain text", key_node, key)
            name = str(key_node.value)
            if name in result:
                # A plain YAML load would silently keep the last one; nobody would notice.
                self.fail("duplicate key", key_node, f"{key}.{name}" if key else name)
            result[name] = (key_node, value_node)
        return result

    def text(self, node: yaml.Node, key: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR_TAG:
            self.fail("must be text (put it in quotes)", node, key)
        return str(node.value)

    def part(self, node: yaml.Node, key: str) -> PartSource:
        source = self.text(node, key)
        if not source.strip():
            self.fail("is empty", node, key)
        if isinstance(node, yaml.ScalarNode) and node.style == "|":
            # A literal block starts on the line after its "|" indicator, line for line.
            return PartSource(source=source, line=node.start_mark.line + 2, exact=True)
        return PartSource(source=source, line=node.start_mark.line + 1, exact="\n" not in source)


def _expected(channel: str) -> str:
    required, optional = CHANNEL_PARTS[channel]
    words = [*sorted(required), *(f"optional {part}" for part in sorted(optional))]
    return f"{channel} templates have " + ", ".join(words)
