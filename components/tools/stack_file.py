"""``Pulumi.<stack>.yaml`` read as the Pulumi CLI reads it: the config strings ``pulumi up`` passes.

The CLI reads stack files with go-yaml v3 (``yes`` and ``on`` stay text, ``010`` is 8, an
unquoted date is a time) and turns every value into a string: text as written, other scalars
as JSON, maps and lists as compact JSON (pulumi/pulumi sdk/go/common/resource/config/object.go,
``MarshalString``). Where that string is not what the YAML looks like (``1.30`` becomes
``"1.3"``, ``2024-01-01`` becomes ``"2024-01-01 00:00:00 +0000 UTC"``, an empty value ``""``),
plan stops and says so, instead of planning something else.
"""

from __future__ import annotations

import calendar
import difflib
import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

#: Stack names the Pulumi CLI accepts (pulumi/pulumi sdk/go/common/tokens/stack_name.go,
#: ``ParseStackName``: ``^[A-Za-z0-9_.-]*``, not empty, at most 100 characters).
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")

_TAG = "tag:yaml.org,2002:"

#: The top-level keys of a stack file (pulumi/pulumi sdk/go/common/workspace/project.go,
#: ``ProjectStack``'s yaml tags). Any other key is refused: ``Config:`` for ``config:``
#: would otherwise plan the defaults.
TOP_LEVEL_KEYS = ("config", "environment", "secretsprovider", "encryptedkey", "encryptionsalt")


def did_you_mean(given: str, allowed: tuple[str, ...] | list[str]) -> str:
    """``; did you mean 'x'?`` for a case mismatch or a near miss, else ``""``."""
    near = [a for a in allowed if a.lower() == given.lower()] or difflib.get_close_matches(
        given, allowed, n=1
    )
    return f"; did you mean {near[0]!r}?" if near else ""


#: Plain scalars go-yaml v3 looks up by their whole text (resolve.go, ``resolveMapList``).
_WORDS: dict[str, tuple[str, Any]] = {
    **dict.fromkeys(("true", "True", "TRUE"), ("bool", True)),
    **dict.fromkeys(("false", "False", "FALSE"), ("bool", False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), ("null", None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), ("float", math.nan)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), ("float", math.inf)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), ("float", -math.inf)),
    "<<": ("merge", "<<"),  # decode.go, isMerge
}
#: Go's strconv.ParseInt(s, 0, 64) syntax, once go-yaml has dropped every ``_``.
_GO_INT = re.compile(r"([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[bB]([01]+)|0[oO]?([0-7]+)|([0-9]+))")
#: resolve.go ``yamlStyleFloat``, and Go's float syntax for a text that starts with ``.``.
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9](_?[0-9])*([eE][-+]?[0-9](_?[0-9])*)?")
#: resolve.go ``allowedTimestampFormats``, as Go's time.Parse reads those layouts.
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:(?:[Tt]([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,][0-9]+)?(?:Z|[-+][0-9]{2}:[0-9]{2}))"
    r"|(?: ([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,][0-9]+)?))?"
)


def _is_timestamp(text: str) -> bool:
    """resolve.go ``parseTimestamp``: one of its layouts, with a real date and time of day."""
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return False
    year, month, day = (int(g) for g in match.groups()[:3])
    clock = [int(g) for g in match.groups()[3:] if g is not None]
    in_day = not clock or (clock[0] < 24 and clock[1] < 60 and clock[2] < 60)
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and in_day


def _go_int(plain: str) -> int | None:
    """strconv.ParseInt(plain, 0, 64), or ParseUint for an unsigned one; None if neither."""
    match = _GO_INT.fullmatch(plain)
    if not match or (match[5] and len(match[5]) > 1 and match[5][0] == "0"):
        return None  # 08: not octal, so not an int to Go (it is the float 8)
    sign, hexa, binary, octal, decimal = match.groups()
    base, digits = next(
        (b, d) for b, d in ((16, hexa), (2, binary), (8, octal), (10, decimal)) if d
    )
    value = int(digits, base) * (-1 if sign == "-" else 1)
    fits = -(2**63) <= value < 2**63 or (not sign and value < 2**64)
    return value if fits else None


def go_scalar(text: str) -> tuple[str, Any]:
    """The tag and value go-yaml v3 gives a plain scalar (yaml.v3 resolve.go, ``resolve``)."""
    if text in _WORDS:
        return _WORDS[text]
    if text[:1] == "." and _DOT_FLOAT.fullmatch(text):
        number = float(text.replace("_", ""))
        return ("float", number) if math.isfinite(number) else ("str", text)
    if text[:1] and text[0] in "+-0123456789":
        if _is_timestamp(text):
            return "timestamp", text
        plain = text.replace("_", "")
        integer = _go_int(plain)
        if integer is not None:
            return "int", integer
        if _YAML_FLOAT.fullmatch(plain) and math.isfinite(float(plain)):
            return "float", float(plain)
    return "str", text


class _GoYamlLoader(yaml.SafeLoader):
    """pyyaml that types plain scalars as go-yaml v3 does, instead of as YAML 1.1 does."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _TAG + go_scalar(value)[0]
        return super().resolve(kind, value, implicit)


for _kind in ("int", "float"):
    _GoYamlLoader.add_constructor(_TAG + _kind, lambda loader, node: go_scalar(node.value)[1])


def _go_json(value: Any) -> Any:
    """Numbers as Go's encoding/json writes a float64 that holds a whole number: ``1``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, list):
        return [_go_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _go_json(v) for k, v in value.items()}
    return value


def pulumi_string(value: Any) -> str:
    """The string the Pulumi CLI hands the program for one stack-file value."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("is not a number JSON can carry")
    return json.dumps(_go_json(value), separators=(",", ":"), sort_keys=True)


def _scalar_surprise(node: yaml.Node, text: str) -> str | None:
    """Why an unquoted scalar is not what it looks like, if it is not."""
    if not isinstance(node, yaml.ScalarNode) or node.style is not None:
        return None
    kind = node.tag.removeprefix(_TAG)
    if kind == "null":
        # pulumi/pulumi sdk/go/common/workspace/loaders.go, checkForEmptyConfig: Pulumi
        # passes "" with the warning "No value for configuration key".
        return "has no value (YAML null); give one, or drop the key for its default"
    if kind not in ("bool", "int", "float") or node.value == text:
        return None
    kind = "boolean" if kind == "bool" else "number"
    return f'{node.value} is the YAML {kind} {text} to Pulumi; quote it ("{node.value}")'


def _check_nodes(path: Path, node: yaml.Node, key: str, seen: set[int]) -> None:
    """Refuse what go-yaml v3 refuses, or reads as something else, anywhere in the file.

    A key given twice in one map: pyyaml keeps the last, go-yaml v3 refuses the file (yaml.v3
    decode.go, ``mapping``: "mapping key ... already defined"). An unquoted timestamp:
    go-yaml makes it a time.Time (resolve.go, ``parseTimestamp``), which Pulumi passes as Go's
    text for it (config/object.go, ``unmarshalObject``: ``v.String()``).
    """
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else key
            if isinstance(k, yaml.ScalarNode):
                if name in lines:
                    raise ConfigError(
                        f"{path}:{k.start_mark.line + 1}: key {name!r} is given twice in one "
                        f"map (first on line {lines[name]})"
                    )
                lines[name] = k.start_mark.line + 1
            _check_nodes(path, v, name, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_nodes(path, item, key, seen)
    elif (
        isinstance(node, yaml.ScalarNode) and node.style is None and node.tag == _TAG + "timestamp"
    ):
        year, month, day, *clock = _TIMESTAMP.fullmatch(node.value).groups()  # type: ignore[union-attr]
        passed = f"{int(year):04}-{int(month):02}-{int(day):02} 00:00:00 +0000 UTC"
        example = "" if any(clock) else f" ({passed!r})"
        raise ConfigError(
            f"{path}:{node.start_mark.line + 1}: key {key!r}: {node.value} is a YAML timestamp "
            f'to Pulumi, passed as Go\'s text for a time{example}; quote it ("{node.value}")'
        )


def _key(where: str, key: Any, namespace: str) -> str:
    """``<namespace>:<name>``; a bare ``<name>`` gets the project's name, as Pulumi does.

    pulumi/pulumi sdk/go/common/workspace/loaders.go, ``stackConfigNamespacedWithProject``
    (called by ``LoadProjectStackBytes``): a key without ``:`` becomes ``<project>:<key>``.
    Then as sdk/go/common/resource/config/key.go (``ParseKey``) parses keys, which still
    reads the old ``<namespace>:config:<name>``.
    """
    parts = key.split(":") if isinstance(key, str) else []
    if len(parts) == 1:
        parts = [namespace, key]
    if len(parts) == 3 and parts[1] == "config":
        parts = [parts[0], parts[2]]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{where} is not <namespace>:<name> or <name>")
    return ":".join(parts)


def read(path: Path, namespace: str) -> dict[str, str]:
    """Every ``config:`` value of a stack file as the string Pulumi passes; ConfigError else.

    ``namespace`` is the project's name, which Pulumi puts before a bare key.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    loader = _GoYamlLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return {}
        _check_nodes(path, root, "", set())  # before pyyaml flattens merge keys into maps
        document = loader.construct_document(root)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    finally:
        loader.dispose()
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must be a map with a config: section, got {document!r:.60}")
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(
                f"{path}: unknown top-level key {key!r}{did_you_mean(str(key), TOP_LEVEL_KEYS)} "
                f"(a stack file has {', '.join(TOP_LEVEL_KEYS)})"
            )
    config = document.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: config: must be a map of key: value, got {config!r:.60}")
    config_node = next(v for k, v in root.value if k.value == "config")
    nodes = {k.value: v for k, v in config_node.value if isinstance(k, yaml.ScalarNode)}
    values: dict[str, str] = {}
    for key, value in config.items():
        where = f"{path}: config key {key!r}"
        full_key = _key(where, key, namespace)
        if full_key in values:
            # Both spellings of one key: Pulumi keeps whichever its map yields last.
            raise ConfigError(f"{where} is {full_key}, which the file gives twice")
        if isinstance(value, dict) and set(value) == {"secure"}:
            raise ConfigError(
                f"{where} is a secret, which plan cannot decrypt offline; "
                f"give a value with --config {full_key}=VALUE"
            )
        try:
            values[full_key] = pulumi_string(value)
        except ValueError as err:
            raise ConfigError(f"{where}: {value!r} {err}") from None
        surprise = key in nodes and _scalar_surprise(nodes[key], values[full_key])
        if surprise:
            raise ConfigError(f"{where}: {surprise}")
    return values
