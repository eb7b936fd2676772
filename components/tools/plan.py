"""``python -m components plan``: run the real stack program offline, under Pulumi's mocks.

It prints every resource the program registers, can write them as JSON (inputs as the
engine received them) and the Kubernetes objects as YAML for ``kubectl apply -f``.
Bad config exits 1 and an output that cannot be written exits 2, each with one line.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import ipaddress
import json
import logging
import os
import re
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_in_stack

from .. import catalog, conventions
from ..config import NAMESPACE
from ..errors import ConfigError
from . import capacity, cost, stack_file
from .cli import (
    MANIFEST_MARK,
    Parser,
    UsageError,
    error,
    manifest_folder,
    path_arg,
    refused,
    remove_folders,
    replace_manifests,
    warning,
    writable,
    write_text,
)
from .critical_path import critical_path, minutes
from .mocks import DEFAULT_REGION, AwsLikeMocks

PROJECT = "eks-gpu-sharing"
SECRET = "[secret]"
#: RFC 1918 ranges: never the source address of a client on the internet, so a public
#: endpoint open only to them is open to no one (a NAT gateway's public address is).
PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


@dataclass
class Plan:
    """What the program registered, in order."""

    stack: str
    config: dict[str, str]
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: What each component passed to ``register_outputs``, by URN.
    component_outputs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "config": self.config,
            "resources": self.resources,
            "outputs": self.outputs,
            "criticalPath": [step.to_json() for step in critical_path(self.resources)],
        }

    def by_type(self, typ: str, under: str | None = None) -> list[dict[str, Any]]:
        """Resources of a type; with ``under``, only the children of that component type
        (e.g. ``GpuNodeGroup``: the GPU groups' node groups, not the system group's)."""
        return [
            r
            for r in self.resources
            if r["type"] == typ and (under is None or _type_of(r["parent"]).endswith(f":{under}"))
        ]

    def one(self, typ: str, under: str | None = None) -> dict[str, Any]:
        found = self.by_type(typ, under)
        if len(found) != 1:
            raise LookupError(f"{len(found)} resources of type {typ}")
        return found[0]


def _type_of(urn: str | None) -> str:
    """The resource type a URN names (urn:pulumi:stack::project::parent$type::name)."""
    return urn.split("::")[2].rsplit("$", 1)[-1] if urn else ""


def _plain(value: Any) -> Any:
    """Engine values as JSON: secrets hidden, unknowns named."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value == rpc.UNKNOWN:
        return "[unknown]"
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine carries every number as a double
    return value


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping what each registration asked of the engine."""

    def __init__(self, mocks: pulumi.runtime.Mocks, plan: Plan) -> None:
        super().__init__(mocks)
        self.plan = plan
        self.stack_urn = ""

    def RegisterResource(self, request):  # noqa: N802 (the engine's RPC name)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
            return response
        self.plan.resources.append(
            {
                "urn": response.urn,
                "type": request.type,
                "name": request.name,
                "parent": request.parent or None,
                "provider": request.provider or None,
                "dependencies": sorted(set(request.dependencies)),
                "inputs": _plain(rpc.deserialize_properties(request.object, keep_internal=False)),
            }
        )
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802
        outputs = _plain(rpc.deserialize_properties(request.outputs, keep_internal=False))
        if request.urn == self.stack_urn:
            self.plan.outputs = outputs
        else:  # a component's register_outputs
            self.plan.component_outputs[request.urn] = outputs
        return super().RegisterResourceOutputs(request)


class _Warnings(logging.Handler):
    def __init__(self, plan: Plan) -> None:
        super().__init__(logging.WARNING)
        self.plan = plan

    def emit(self, record: logging.LogRecord) -> None:
        self.plan.warnings.append(record.getMessage())


def config_error(error: BaseException | None) -> ConfigError | None:
    """The ConfigError behind an error, also one the Pulumi runtime wrapped on the way out."""
    while error is not None:
        if isinstance(error, ConfigError):
            return error
        error = error.__cause__ or error.__context__
    return None


def aws_config_keys() -> tuple[str, ...]:
    """The ``aws:`` keys the AWS provider reads: those its Python SDK's config module gets
    (pulumi_aws/config/vars.py, generated from the provider's schema)."""
    spec = importlib.util.find_spec("pulumi_aws")
    assert spec is not None and spec.origin is not None  # a dependency of the library
    source = (Path(spec.origin).parent / "config" / "vars.py").read_text(encoding="utf-8")
    return tuple(sorted(set(re.findall(r"__config__\.get\w*\('(\w+)'", source))))


def _check_aws_keys(values: dict[str, str]) -> None:
    """An ``aws:`` key the provider does not read is a typo, which would plan the default."""
    known = aws_config_keys()
    for key in values:
        namespace, _, name = key.partition(":")
        if namespace == "aws" and name not in known:
            raise ConfigError(
                f"unknown AWS provider config key {key!r}"
                f"{stack_file.did_you_mean(key, [f'aws:{k}' for k in known])} "
                "(pulumi-aws reads aws:region, aws:profile and the others in "
                "pulumi_aws/config/vars.py)"
            )


def _stacks(project_dir: Path) -> str:
    """The stacks whose files are in the project folder, for a --stack that names none."""
    files = project_dir.glob("Pulumi.*.yaml")
    return ", ".join(sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in files))


def stack_config(project_dir: Path, stack: str, overrides: list[str]) -> dict[str, str]:
    """The stack's config as Pulumi hands it to a program: every value a string.

    UsageError for arguments that name nothing (a stack, a folder, a ``--config`` without
    ``=`` or given twice); ConfigError for config the stack would refuse.
    """
    if not stack_file.STACK_NAME.fullmatch(stack):
        raise UsageError(
            f"--stack {stack!r} is not a stack name Pulumi accepts: letters, digits, "
            "-, _ and ., at most 100"
        )
    if not project_dir.is_dir():
        raise UsageError(f"--project-dir {project_dir}: no such folder")
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise UsageError(
            f"--stack {stack}: no stack file {path}; the stacks there: "
            f"{_stacks(project_dir) or 'none'}"
        )
    overridden: dict[str, str] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--config takes KEY=VALUE, got {item!r}")
        key = key if ":" in key else f"{NAMESPACE}:{key}"
        if key in overridden:
            raise UsageError(f"--config {key} is given twice ({overridden[key]!r}, {value!r})")
        overridden[key] = value
    values = {**stack_file.read(path, NAMESPACE), **overridden}
    _check_aws_keys(values)
    return values


def record(
    program: Callable[[], Any],
    stack: str,
    config: dict[str, str],
    project: str = PROJECT,
    mocks: AwsLikeMocks | None = None,
) -> Plan:
    """Run ``program`` as a Pulumi program under the mocks; record what it registers.

    Pass the ``mocks`` of an earlier run to see this run as an update of that one.
    """
    plan = Plan(stack=stack, config=config)
    mocks = mocks or AwsLikeMocks(region=config.get("aws:region", DEFAULT_REGION))
    monitor = _RecordingMonitor(mocks, plan)
    logger = logging.getLogger("eks-gpu-sharing.plan")
    logger.propagate = False
    warnings = _Warnings(plan)
    logger.addHandler(warnings)
    # The language host hands a Python program its config this way, as one JSON object.
    previous_config = os.environ.get("PULUMI_CONFIG")
    os.environ["PULUMI_CONFIG"] = json.dumps(config)
    set_all_config({})
    settings.configure(
        pulumi_mocks.MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=pulumi_mocks.MockEngine(logger),
            project=project,
            stack=stack,
            dry_run=False,
            organization="organization",
            callbacks=None,
            # MockSettings leaves the set of outputs in flight to the SDK's process-wide
            # default. A failed program leaves its cancelled outputs there, and the next
            # program would wait on them after their loop is closed ("Event loop is
            # closed"). Each program gets its own set, as each `pulumi up` has its own process.
            outputs=set(),
        )
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(run_in_stack(program))
    finally:
        # A failed program leaves registrations in flight; end them here rather than
        # have the interpreter report them as destroyed while pending.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)
        logger.removeHandler(warnings)
        if previous_config is None:
            del os.environ["PULUMI_CONFIG"]
        else:
            os.environ["PULUMI_CONFIG"] = previous_config
    return plan


def run(project_dir: Path, stack: str, config: dict[str, str], project: str = PROJECT) -> Plan:
    """Run the project's ``__main__.py`` as ``pulumi up`` would, under the mocks."""
    sys.path.insert(0, str(project_dir))
    try:
        return record(
            lambda: runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__"),
            stack,
            config,
            project,
        )
    finally:
        sys.path.remove(str(project_dir))


def kubernetes_objects(plan: Plan) -> list[dict[str, Any]]:
    """Every Kubernetes object, as ``kubectl apply`` wants it, in registration order."""
    objects = []
    for resource in plan.resources:
        typ = resource["type"]
        if not typ.startswith("kubernetes:") or typ.startswith("pulumi:providers"):
            continue
        inputs = resource["inputs"]
        objects.append({"apiVersion": inputs["apiVersion"], "kind": inputs["kind"], **inputs})
    return objects


def manifests(plan: Plan) -> dict[str, str]:
    """One YAML file per object, numbered so ``kubectl apply -f`` creates namespaces first,
    each marked as ours (the only files a later plan may replace)."""
    objects = sorted(kubernetes_objects(plan), key=lambda o: o["kind"] != "Namespace")
    return {
        f"{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml": MANIFEST_MARK
        + yaml.safe_dump(obj, sort_keys=False)
        for i, obj in enumerate(objects)
    }


def _key_inputs(resource: dict[str, Any]) -> str:
    """The few inputs a reader checks first, per resource type."""
    inputs = resource["inputs"]
    if resource["type"] == "aws:eks/nodeGroup:NodeGroup":
        scaling = inputs.get("scalingConfig", {})
        return (
            f"{inputs.get('instanceTypes')} {inputs.get('amiType')} "
            f"{inputs.get('capacityType')} min/desired/max={scaling.get('minSize')}/"
            f"{scaling.get('desiredSize')}/{scaling.get('maxSize')}{_host_sharing(inputs)}"
        )
    if resource["type"] == "eks:index:Cluster":
        return f"name={inputs.get('name')} version={inputs.get('version')}"
    if resource["type"].startswith("kubernetes:") and "metadata" in inputs:
        meta = inputs["metadata"]
        where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
        return f"{where}{meta.get('name', '')}"
    if resource["type"] == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
        return str(inputs.get("policyArn"))
    return ""


def _host_sharing(group: dict[str, Any]) -> str:
    """A Bottlerocket group's sharing, which lives in its launch template's user data."""
    labels = group.get("labels") or {}
    units = labels.get(conventions.HOST_PLUGIN_UNITS_LABEL)
    if units is None:
        return ""
    resource = labels.get(conventions.HOST_PLUGIN_RESOURCE_LABEL)
    version = (group.get("launchTemplate") or {}).get("version")
    return (
        f" host plugin: {units} x nvidia.com/{resource} per GPU, from launch template "
        f"version {version}'s user data (a change is a new version: EKS replaces the nodes)"
    )


def _parent_name(urn: str | None) -> str:
    return urn.rsplit("::", 1)[-1] if urn else "-"


def print_table(plan: Plan, out: Any = sys.stdout) -> None:
    rows = [("TYPE", "NAME", "PARENT", "KEY INPUTS")] + [
        (r["type"], r["name"], _parent_name(r["parent"]), _key_inputs(r)) for r in plan.resources
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join(cells), row[3], file=out)
    print(f"\n{len(plan.resources)} resources. Outputs:", file=out)
    for key, value in plan.outputs.items():
        print(f"  {key}: {value if len(str(value)) < 100 else str(value)[:97] + '...'}", file=out)
    autoscaled = capacity.autoscaled(plan.resources)
    print("\nGPU node groups (slices one node adds, and the most the group reaches):", file=out)
    for group in capacity.node_groups(plan.resources):
        print(f"  {group.line(autoscaled)}", file=out)
    lines = cost.estimate(plan.resources)
    spot = "; Spot groups too, an upper bound" if cost.has_spot(lines) else ""
    print(
        f"\nEstimated cost while running: ${sum(c.usd_per_hour for c in lines):.2f}/hour "
        f"(On-Demand, us-west-2 prices{spot}; data transfer and CloudWatch logs extra):",
        file=out,
    )
    for line in lines:
        print(f"  ${line.usd_per_hour:.3f}/h  {line.item}", file=out)
    if autoscaled:
        idle, full = (
            sum(c.usd_per_hour for c in cost.estimate(plan.resources, size))
            for size in ("minSize", "maxSize")
        )
        host = cost.autoscaler_host(plan.resources)
        kept = f", and {host.item}" if host else ""
        print(
            f"With the Cluster Autoscaler: ${idle + (host.usd_per_hour if host else 0):.2f}/hour "
            f"idle (every group at its min{kept}), ${full:.2f}/hour full (every group at its "
            "max).",
            file=out,
        )
    print_critical_path(plan, out)
    print(
        f"\nKubernetes versions offline: the EKS calendar in components/catalog.py as of "
        f"{catalog.CALENDAR_AS_OF} (a real `pulumi up` asks EKS).",
        file=out,
    )


def print_critical_path(plan: Plan, out: Any = sys.stdout) -> None:
    """The chain of waits that bounds ``up``, each with its kind and typical time."""
    steps = critical_path(plan.resources)
    total = sum(step.seconds for step in steps)
    print(
        f"\nCritical path of `pulumi up`: {minutes(total)}, the longest chain of waits "
        '(typical times, README.md "Time to ready"):',
        file=out,
    )
    width = max((len(f"{step.type} {step.name}") for step in steps), default=0)
    for step in steps:
        where = f"{step.type} {step.name}".ljust(width)
        print(f"  {where}  {step.wait:<21}  {minutes(step.seconds)}", file=out)


def plan_warnings(plan: Plan) -> list[str]:
    """What the plan would do that the user may not mean: the program's warnings and ours."""
    found = []
    if "aws:region" not in plan.config:
        found.append(
            f"aws:region is unset: the offline plan assumes {DEFAULT_REGION} (a real `pulumi "
            "up` takes AWS_REGION, else the AWS profile's region)"
        )
    key = f"{NAMESPACE}:publicAccessCidrs"
    for i, cidr in enumerate(json.loads(plan.config.get(key, "[]"))):
        network = ipaddress.ip_network(cidr, strict=False)  # the program has checked it
        if isinstance(network, ipaddress.IPv4Network) and any(
            network.subnet_of(r) for r in PRIVATE_RANGES
        ):
            found.append(
                f"{key}[{i}] {cidr} is a private (RFC 1918) range, never the address of a "
                "client on the internet, so it opens the public endpoint to no one; give the "
                "public address your traffic leaves from (e.g. your NAT's)"
            )
    return [*plan.warnings, *found]


def main(argv: list[str]) -> int:
    parser = Parser(
        prog="python -m components plan",
        description="Run the stack program offline under Pulumi's mocks and show its resources. "
        "Exit 0: planned; 1: the config is refused; 2: usage (an unknown stack, a --config "
        "without =, a missing --project-dir), or an output cannot be written.",
    )
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to read")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (eks-gpu-sharing: is implied)",
    )
    parser.add_argument(
        "--json", type=path_arg, metavar="FILE", help="write the plan as JSON (folders are made)"
    )
    parser.add_argument(
        "--manifests",
        type=path_arg,
        metavar="DIR",
        help="write every Kubernetes object as YAML for kubectl apply -f DIR; DIR ends up "
        "holding exactly this plan's objects, so it must be new, empty or hold only files "
        f"an earlier plan wrote there (NN-kind-name.yaml, starting {MANIFEST_MARK.strip()!r})",
    )
    parser.add_argument(
        "--project-dir",
        type=path_arg,
        default=Path.cwd(),
        help="directory holding Pulumi.yaml and __main__.py (default: .)",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show the traceback of an unexpected error"
    )
    args = parser.parse_args(argv)
    made: list[Path] = []
    code = 1
    try:
        code = _plan(args, made)
    finally:
        if code:  # a failed run leaves none of the folders it made
            remove_folders(made)
    return code


def _plan(args: argparse.Namespace, made: list[Path]) -> int:
    """plan's work, once its arguments are parsed; the exit code."""
    try:
        if args.json:
            writable(args.json, "--json", made)
        if args.manifests:
            manifest_folder(args.manifests, made)
        if args.project_dir.is_dir() and not (args.project_dir / "__main__.py").is_file():
            raise UsageError(
                f"--project-dir {args.project_dir} has no __main__.py (the stack program)"
            )
        config = stack_config(args.project_dir, args.stack, args.config)
    except (UsageError, ConfigError) as err:
        return refused("plan", err)
    try:
        plan = run(args.project_dir, args.stack, config)
    except Exception as e:
        cause = config_error(e)
        if cause is None and args.traceback:
            raise
        error("plan", cause or _unexpected(e))
        return 1
    try:
        if args.json:
            write_text(args.json, json.dumps(plan.to_json(), indent=2) + "\n")
        if args.manifests:
            written = manifests(plan)
            replace_manifests(args.manifests, written)
    except UsageError as err:
        error("plan", err)
        return 2
    print_table(plan)
    if args.json:
        print(f"wrote {args.json}")
    if args.manifests:
        print(f"wrote {len(written)} manifests to {args.manifests}")
    sys.stdout.flush()  # the table first, where both go to one terminal
    for text in plan_warnings(plan):
        warning("plan", text)
    return 0


def _unexpected(error: BaseException) -> str:
    """One line for an error that is not about the config: a bug, or the environment."""
    text = " ".join(str(error).split()) or "no message"
    return (
        f"the stack program failed: {type(error).__name__}: {text:.300} (--traceback shows where)"
    )
