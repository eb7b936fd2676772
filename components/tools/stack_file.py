"""``Pulumi.<stack>.yaml`` read as the Pulumi CLI reads it: the config strings ``pulumi up`` passes.

The CLI reads stack files with Go's yaml.v3 (YAML 1.2: ``yes``, ``on`` and dates stay text)
and turns every value into a string: text as written, other scalars as JSON, maps and lists
as compact JSON (pulumi/pulumi sdk/go/common/resource/config/object.go, ``MarshalString``).
Where that string is not what the YAML looks like (``1.30`` becomes ``"1.3"``, an empty
value ``"null"``), plan stops and says so, instead of planning something else.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

#: Stack names the Pulumi CLI accepts (pulumi/pulumi pkg/backend/diy/backend.go,
#: ``validateStackName``: ``^[A-Za-z0-9_.-]{1,100}$``).
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class _GoYamlLoader(yaml.SafeLoader):
    """pyyaml with yaml.v3's implicit types (YAML 1.2 core schema) instead of YAML 1.1's."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


for _tag, _pattern, _first in (
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("null", r"~|null|Null|NULL|", "~nN\0"),
    ("int", r"[-+]?(0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+)", "-+0123456789"),
    (
        "float",
        r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)",
        "-+0123456789.",
    ),
    ("merge", r"<<", "<"),
):
    _GoYamlLoader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(rf"^(?:{_pattern})$"), list(_first)
    )
_GoYamlLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [""])


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
    if not isinstance(node, yaml.ScalarNode) or node.style is not None or node.value == text:
        return None
    if text == "null":
        return "has no value (YAML null); give one, or drop the key for its default"
    kind = "boolean" if text in ("true", "false") else "number"
    return f'{node.value} is the YAML {kind} {text} to Pulumi; quote it ("{node.value}")'


def _key(where: str, key: Any, namespace: str) -> str:
    """``<namespace>:<name>``, or the old ``<namespace>:config:<name>`` the CLI still reads.

    As pulumi/pulumi sdk/go/common/resource/config/key.go (``ParseKey``) parses keys.
    """
    parts = key.split(":") if isinstance(key, str) else []
    if len(parts) == 3 and parts[1] == "config":
        parts = [parts[0], parts[2]]
    if len(parts) != 2:
        hint = f"; write {namespace}:{key}" if len(parts) == 1 else ""
        raise ConfigError(f"{where} is not <namespace>:<name>{hint}")
    return ":".join(parts)


def read(path: Path, namespace: str) -> dict[str, str]:
    """Every ``config:`` value of a stack file as the string Pulumi passes; ConfigError else."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    loader = _GoYamlLoader(text)
    try:
        root = loader.get_single_node()
        document = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    finally:
        loader.dispose()
    if root is None or document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must be a map with a config: section, got {document!r:.60}")
    config = document.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: config: must be a map of key: value, got {config!r:.60}")
    config_node = next(v for k, v in root.value if k.value == "config")
    nodes: dict[str, yaml.Node] = {}
    for k, v in config_node.value:
        if isinstance(k, yaml.ScalarNode) and k.value in nodes:
            # pyyaml keeps the last; yaml.v3 (decode.go: "mapping key ... already defined"),
            # and so the Pulumi CLI, refuses the file.
            raise ConfigError(
                f"{path}:{k.start_mark.line + 1}: config key {k.value!r} is given twice"
            )
        if isinstance(k, yaml.ScalarNode):
            nodes[k.value] = v
    values = {}
    for key, value in config.items():
        where = f"{path}: config key {key!r}"
        full_key = _key(where, key, namespace)
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
