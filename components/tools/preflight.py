"""``python -m components preflight``: what a real account would refuse, asked up front.

A `pulumi up` with no quota for G instances waits for its node group and fails only
after many minutes. This asks Service Quotas (read-only) whether the stack's GPU nodes fit,
and checks the stack config for what can never work. Exit codes: 0 all checks passed;
1 a check failed (each said on one line), or the stack sets no aws:region; 3 the AWS
checks were skipped (no boto3, no AWS credentials, or AWS did not answer: said why in one
line) and the rest passed.
"""

from __future__ import annotations

import ipaddress
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import catalog
from ..config import args_from_config
from ..errors import ConfigError
from ..stack import GpuSharingArgs
from .cli import Parser, UsageError, error, refused
from .plan import stack_config

SKIPPED = 3
#: Service Quotas codes (service ``ec2``) of the vCPU quotas our nodes count against, by
#: (instance family class, capacity type): G instances for the GPU nodes, and the standard
#: families (T, M, C among them) for the On-Demand system nodes.
QUOTAS = {
    ("G", "ON_DEMAND"): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("G", "SPOT"): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("standard", "ON_DEMAND"): (
        "L-1216C47A",
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    ),
}
#: How each quota's nodes are named in a message.
NODES = {"G": "GPU nodes", "standard": "system nodes"}
#: IPv4 ranges reserved for documentation (RFC 5737): nothing on the internet has them, so a
#: public endpoint limited to them can never be reached. (IPv6 blocks, RFC 3849's among
#: them, are refused earlier: validation.cidrs.)
DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


def documentation_cidrs(args: GpuSharingArgs) -> list[str]:
    """One line per publicAccessCidrs entry inside a documentation range."""
    problems = []
    for cidr in args.cluster.public_cidrs():
        network = ipaddress.IPv4Network(cidr)
        if any(network.subnet_of(doc) for doc in DOCUMENTATION_RANGES):
            problems.append(
                f"publicAccessCidrs {cidr} is a documentation range (RFC 5737): nothing "
                "can reach the API from it; set eks-gpu-sharing:publicAccessCidrs to your own "
                "address"
            )
    return problems


def vcpus_needed(args: GpuSharingArgs) -> dict[tuple[str, str], int]:
    """vCPUs the node groups can reach at their max size, by QUOTAS key."""
    needed: dict[tuple[str, str], int] = defaultdict(int)
    for group in args.node_groups.values():
        vcpus = catalog.G4DN[group.instance_type].vcpus
        needed["G", group.capacity_type] += group.max_size * vcpus
    if args.system_nodes is not None:
        system = args.system_nodes
        vcpus = catalog.SYSTEM_INSTANCE_TYPES[system.instance_type].vcpus
        needed["standard", "ON_DEMAND"] += system.nodes * vcpus
    return dict(needed)


def quota_value(quotas: Any, code: str) -> float:
    """The account's applied quota, or AWS's default where no applied value is available
    (GetServiceQuota raises NoSuchResourceException; botocore service-quotas model,
    GetServiceQuota and GetAWSDefaultServiceQuota)."""
    ask = {"ServiceCode": "ec2", "QuotaCode": code}
    try:
        return float(quotas.get_service_quota(**ask)["Quota"]["Value"])
    except quotas.exceptions.NoSuchResourceException:
        return float(quotas.get_aws_default_service_quota(**ask)["Quota"]["Value"])


def quota_checks(args: GpuSharingArgs, quotas: Any) -> tuple[list[str], list[str]]:
    """(problems, fits): per quota, whether it covers the stack's nodes at max size.
    ``quotas`` is a Service Quotas client (boto3). Instances already running count against
    the same quota, and so do the extra nodes a node group update starts before it drains the
    old ones (EKS managed-node-update-behavior, "Scale up phase"): a fit here is necessary,
    not sufficient.
    """
    problems, fits = [], []
    for key, vcpus in sorted(vcpus_needed(args).items()):
        code, name = QUOTAS[key]
        family, capacity_type = key
        nodes = f"{capacity_type} {NODES[family]}"
        quota = quota_value(quotas, code)
        if quota < vcpus:
            problems.append(
                f'the quota "{name}" ({code}) is {quota:g} vCPUs; the stack\'s {nodes} can '
                f"use {vcpus} at their max size: ask for more in Service Quotas first (the "
                "node group would wait and fail)"
            )
        else:
            fits.append(
                f'the quota "{name}" ({code}, {quota:g} vCPUs) is at least the {vcpus} the '
                f"stack's {nodes} need at max size (instances already running count against "
                "it too)"
            )
    return problems, fits


def asked(args: GpuSharingArgs, quotas: Any) -> tuple[list[str], list[str], str]:
    """quota_checks, or why AWS did not answer, in one line (access denied, expired
    credentials, no network: botocore ClientError / BotoCoreError)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return (*quota_checks(args, quotas), "")
    except (BotoCoreError, ClientError) as error:
        return [], [], " ".join(str(error).split())


def quotas_client(region: str, profile: str | None) -> tuple[Any, str]:
    """A Service Quotas client (with the stack's ``aws:profile``), or why there is none."""
    try:
        import boto3
    except ImportError:
        return None, "boto3 is not installed (pip install -e '.[preflight]')"
    from botocore.exceptions import ProfileNotFound

    try:
        session = boto3.session.Session(region_name=region, profile_name=profile)
    except ProfileNotFound:
        return None, f"no AWS profile {profile!r} (aws:profile) in ~/.aws"
    if session.get_credentials() is None:
        return None, "no AWS credentials (environment, ~/.aws or an instance role)"
    return session.client("service-quotas"), ""


def run(
    args: GpuSharingArgs,
    region: str,
    client: Callable[[str, str | None], tuple[Any, str]] = quotas_client,
    out: Any = sys.stdout,
) -> int:
    """Each check on one line; the exit code (module docstring)."""
    problems = documentation_cidrs(args)
    fits: list[str] = []
    quotas, why_not = client(region, args.cluster.aws_profile)
    if quotas is not None:
        found, fits, why_not = asked(args, quotas)
        problems += found
    for problem in problems:
        print(f"error: {problem}", file=out)
    for fit in fits:
        print(f"ok: in {region} (aws:region), {fit}", file=out)
    if why_not:
        print(f"skipped: the quota checks in {region} (aws:region): {why_not}", file=out)
    if problems:
        return 1
    return SKIPPED if why_not else 0


def main(argv: list[str]) -> int:
    parser = Parser(
        prog="python -m components preflight",
        description="Check the stack against the AWS account before `pulumi up` (read-only). "
        "Exit 0: passed; 1: a check failed; 3: AWS checks skipped (no boto3 or credentials).",
    )
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to read")
    parser.add_argument(
        "--project-dir", type=Path, default=Path.cwd(), help="directory holding Pulumi.<stack>.yaml"
    )
    options = parser.parse_args(argv)
    try:
        config = stack_config(options.project_dir, options.stack, [])
        args = args_from_config(config, options.stack)
    except (UsageError, ConfigError) as e:
        return refused("preflight", e)
    if "aws:region" not in config:
        # Not a guess: the quotas are per region, and pulumi-aws may pick its region from
        # the environment of whoever runs `up`.
        error(
            "preflight",
            f"Pulumi.{options.stack}.yaml sets no aws:region, so preflight cannot tell "
            "which region's quotas to check: pulumi config set aws:region <region>",
        )
        return 1
    return run(args, config["aws:region"])
