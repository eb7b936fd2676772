"""CrossGuard policy pack: ``pulumi preview --policy-pack policy/`` checks the secure defaults.

The rules live in :mod:`policy.eks_gpu_sharing_policies`, their checks as plain functions
beside it; this file only hands them to CrossGuard with their enforcement levels.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI runs this file from policy/; the checks reuse the project's constants
# (``components``), which sit beside it as they do for the stack program.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    Policy,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.eks_gpu_sharing_policies import RULES, STACK_RULES, Rule, StackRule  # noqa: E402
from policy.inputs import StackResource  # noqa: E402


def _level(mandatory: bool) -> EnforcementLevel:
    return EnforcementLevel.MANDATORY if mandatory else EnforcementLevel.ADVISORY


def resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type in rule.types:
            for message in rule.check(args.resource_type, args.props):
                report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=_level(rule.mandatory),
    )


def stack_policy(rule: StackRule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            StackResource(r.urn, r.resource_type, r.props, tuple(d.urn for d in r.dependencies))
            for r in args.resources
        ]
        for urn, message in rule.check(resources):
            report_violation(message, urn)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=_level(rule.mandatory),
    )


POLICIES: list[Policy] = [resource_policy(r) for r in RULES] + [
    stack_policy(r) for r in STACK_RULES
]

if __name__ == "__main__":
    # Serves the policies to the engine over gRPC until the engine stops it.
    PolicyPack(
        name="eks-gpu-sharing",
        description="Secure defaults of EKS clusters with shared NVIDIA GPUs.",
        policies=POLICIES,
    )
