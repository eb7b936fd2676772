"""Shared fixtures: the demo stack's plan, run once under the mocks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components import plan as planner

ROOT = Path(__file__).resolve().parent.parent


def run_stack(stack: str = "dev", overrides: list[str] | None = None) -> planner.Plan:
    """The real ``__main__.py`` with ``Pulumi.<stack>.yaml`` (and overrides), under mocks."""
    return planner.run(ROOT, stack, planner.stack_config(ROOT, stack, overrides or []))


def run_program(program: Callable[[], Any], config: dict[str, str] | None = None) -> planner.Plan:
    """Any Pulumi program (e.g. one component) under the mocks."""
    return planner.record(program, "test", config or {"aws:region": "us-west-2"})


@pytest.fixture(scope="session")
def demo_plan() -> planner.Plan:
    return run_stack("dev")


def by_name(plan: planner.Plan, name: str) -> dict[str, Any]:
    found = [r for r in plan.resources if r["name"] == name]
    assert len(found) == 1, f"{len(found)} resources named {name}"
    return found[0]
