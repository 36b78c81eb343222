"""Reading one template file: its channel and, per locale, the source of each part.

The file is composed with PyYAML's node API rather than loaded, so every problem can name
the line it is on.

Every locale of an email template has a subject and a body (``html`` and ``text``), and
none may be blank: an email without them is refused here, not by the provider. Push
templates may also have, beside ``locales``:

- ``data``: extra data payload keys, each a template like a part (the ``link`` part is
  already sent as ``data["link"]``). FCM's reserved keys (``from``, ``notification``,
  ``message_type``, anything starting with ``google.`` or ``gcm.``) are refused;
- ``priority``: ``high`` (deliver now, wake the device) or ``normal``;
- ``ttl``: how long an undelivered push stays worth delivering, ``30m``, ``6h``, ``2d``
  (at most ``28d``, FCM's limit; ``0s`` means now or never);
- ``sound``: the sound to play, ``default`` or a sound file bundled with the app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import yaml

from kinds import all_kinds, is_kind, kind, one_of
from message_templates.errors import InvalidTemplateError

TOP_LEVEL_KEYS = ("channel", "description", "locales")
PRIORITIES = ("high", "normal")
# Data keys FCM keeps for itself (it refuses a message using one); "link" is the link part's.
RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type", "link"})
RESERVED_DATA_PREFIXES = ("google.", "gcm.")
MAX_TTL_SECONDS = 28 * 24 * 3600  # FCM keeps a message four weeks at most
_TTL = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
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
class PushOptions:
    """How a push is delivered; None leaves each to FCM's default.

    Attributes:
        priority: ``high`` or ``normal``.
        ttl_seconds: How long an undelivered push stays worth delivering.
        sound: The sound to play (``default`` or a bundled sound file).
    """

    priority: str | None = None
    ttl_seconds: int | None = None
    sound: str | None = None


@dataclass(frozen=True)
class TemplateSpec:
    """One template file, checked for shape but not yet compiled.

    ``data`` (push only) maps extra data payload keys to their template source; ``push``
    holds the push delivery options.
    """

    name: str
    path: Path
    channel: str
    description: str | None
    locales: dict[str, dict[str, PartSource]]
    data: dict[str, PartSource] = field(default_factory=dict)
    push: PushOptions = field(default_factory=PushOptions)


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
        options = _options_by_kind()
        for key, (key_node, _) in top.items():
            if key not in TOP_LEVEL_KEYS and key not in options:
                self.fail(f"unknown field (expected {', '.join(TOP_LEVEL_KEYS)})", key_node, key)
        if "channel" not in top:
            self.fail(f"missing 'channel' ({one_of()})", root)
        channel_node = top["channel"][1]
        channel = self.text(channel_node, "channel")
        if not is_kind(channel):
            self.fail(f"unknown channel {channel!r} ({one_of()})", channel_node, "channel")
        for key, having in options.items():
            if key in top and channel not in having:
                self.fail(f"only {' and '.join(having)} templates have '{key}'", top[key][0], key)
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
            data=self.data(top["data"][1]) if "data" in top else {},
            push=self.push_options(top),
        )

    def data(self, node: yaml.Node) -> dict[str, PartSource]:
        if not isinstance(node, yaml.MappingNode):
            self.fail("must map data keys to text", node, "data")
        result: dict[str, PartSource] = {}
        for key, (key_node, value_node) in self.pairs(node, "data").items():
            if key in RESERVED_DATA_KEYS or key.startswith(RESERVED_DATA_PREFIXES):
                reserved_by = "the link part" if key == "link" else "FCM"
                self.fail(f"reserved by {reserved_by}", key_node, f"data.{key}")
            if not key.strip():
                self.fail("a data key cannot be blank", key_node, "data")
            result[key] = self.part(value_node, f"data.{key}")
        return result

    def push_options(self, top: _Pairs) -> PushOptions:
        priority = ttl = sound = None
        if "priority" in top:
            node = top["priority"][1]
            priority = self.text(node, "priority")
            if priority not in PRIORITIES:
                self.fail(f"must be {' or '.join(PRIORITIES)}", node, "priority")
        if "ttl" in top:
            node = top["ttl"][1]
            match = _TTL.fullmatch(str(node.value)) if isinstance(node, yaml.ScalarNode) else None
            if match is None:
                self.fail("must be a duration like 30m, 6h or 2d", node, "ttl")
            ttl = int(match[1]) * _UNIT_SECONDS[match[2]]
            if ttl > MAX_TTL_SECONDS:
                self.fail("FCM keeps a push 28d at most", node, "ttl")
        if "sound" in top:
            node = top["sound"][1]
            sound = self.text(node, "sound")
            if not sound.strip():
                self.fail("is empty", node, "sound")
        return PushOptions(priority=priority, ttl_seconds=ttl, sound=sound)

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
        template = kind(channel).template
        required, optional = template.required, template.optional
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


def _options_by_kind() -> dict[str, list[str]]:
    """Each key a template file may have beside the common ones (``data``, ``ttl``...), and
    the channel kinds whose templates may have it."""
    options: dict[str, list[str]] = {}
    for described in all_kinds():
        for key in described.template.options:
            options.setdefault(key, []).append(described.name)
    return options


def _expected(channel: str) -> str:
    parts = kind(channel).template
    words = [*sorted(parts.required), *(f"optional {part}" for part in sorted(parts.optional))]
    return f"{channel} templates have " + ", ".join(words)
