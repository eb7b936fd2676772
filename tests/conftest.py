"""Shared fixtures: the demo stack's plan, run once under the mocks.

Pulumi is imported only when a fixture needs it, so the ``gpu`` tests also run on a GPU
machine that has PyTorch but not the Pulumi SDK.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from components.tools.plan import Plan

ROOT = Path(__file__).resolve().parent.parent


#: What ``make plan`` adds for a stack that leaves the endpoint's CIDRs unset, as a fresh
#: clone's do (the Makefile's PLAN_ADDRESS; tests/test_cli.py checks they agree).
PLAN_CIDRS = 'publicAccessCidrs=["192.0.2.1/32"]'


#: The address tests open a public endpoint to (RFC 5737 TEST-NET-2): it needs one.
OWN_CIDRS = ("198.51.100.7/32",)


def cluster_args(**kwargs: Any) -> Any:
    """GpuClusterArgs as a user writes them: a public endpoint gets its CIDRs."""
    from components import GpuClusterArgs

    if kwargs.get("endpoint_public_access", True):
        kwargs.setdefault("public_access_cidrs", list(OWN_CIDRS))
    return GpuClusterArgs(**kwargs)


def run_stack(stack: str = "dev", overrides: list[str] | None = None) -> Plan:
    """The real ``__main__.py`` with ``Pulumi.<stack>.yaml`` (and overrides), under mocks,
    planned as ``make plan`` plans it."""
    from components.tools import plan as planner

    config = planner.stack_config(ROOT, stack, overrides or [])
    if not {"eks-gpu-sharing:publicAccessCidrs", "eks-gpu-sharing:endpointPublicAccess"} & set(
        config
    ):
        config = planner.stack_config(ROOT, stack, [*(overrides or []), PLAN_CIDRS])
    return planner.run(ROOT, stack, config)


def run_program(program: Callable[[], Any], config: dict[str, str] | None = None) -> Plan:
    """Any Pulumi program (e.g. one component) under the mocks."""
    from components.tools import plan as planner

    return planner.record(program, "test", config or {"aws:region": "us-west-2"})


def plan_scope(fixture_name: str, config: pytest.Config) -> str:
    """Plans are built once per session, but once per test while mutmut records which tests
    run which code (``make mutate``): a plan shared by many tests would tie the code that
    built it to the first of them only, and its mutants would go untried by the others."""
    return "function" if os.environ.get("MUTANT_UNDER_TEST") == "stats" else "session"


def examples(wanted: int) -> int:
    """Hypothesis examples per test: fewer under mutmut, which runs a test once per mutant
    (and there, the same examples each time: tests/test_config_fuzz.py)."""
    return max(wanted // 5, 8) if os.environ.get("MUTANT_UNDER_TEST") else wanted


@pytest.fixture(scope=plan_scope)
def demo_plan() -> Plan:
    return run_stack("dev")


def by_name(plan: Plan, name: str) -> dict[str, Any]:
    found = [r for r in plan.resources if r["name"] == name]
    assert len(found) == 1, f"{len(found)} resources named {name}"
    return found[0]


#: The day every test runs on, so that no test depends on today's date. Only the canary in
#: tests/test_kubernetes_versions.py reads the real date.
PINNED_TODAY = dt.date(2026, 11, 22)


@pytest.fixture(autouse=True)
def pinned_today(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dt.date:
    """The product's one clock (catalog.today) reads PINNED_TODAY in every test.

    ``gpu`` tests run the pods' own programs on a GPU machine that has no Pulumi, so they
    neither import the library nor read its clock.
    """
    if request.node.get_closest_marker("gpu"):
        return PINNED_TODAY
    from components import catalog

    monkeypatch.setattr(catalog, "today", lambda: PINNED_TODAY)
    return PINNED_TODAY
