"""Kubernetes versions: the calendar's certain rules, EKS's answer (mocked offline), and
tests that never depend on today's date except for one canary."""

from __future__ import annotations

import datetime as dt

import pytest

from components import ConfigError, catalog
from components.tools.plan import config_error
from tests.conftest import cluster_args
from tests.test_cluster import build
from tests.test_plan import plan_cli


def test_version_defaults_to_the_newest_eks_lists():
    plan = build()
    assert plan.one("eks:index:Cluster")["inputs"]["version"] == "1.35"


def test_a_version_eks_does_not_list_is_refused():
    """1.36 is newer than the calendar, so only EKS's answer (mocked: the calendar as of its
    day) can refuse it."""
    with pytest.raises(Exception) as error:
        build(kubernetes_version="1.36")
    assert str(config_error(error.value)).startswith(
        "kubernetesVersion '1.36' is not in EKS standard support by EKS's own list"
    )


def test_the_message_on_the_day_standard_support_ends():
    ends = catalog.EKS_STANDARD_SUPPORT_ENDS["1.35"]
    cluster_args(kubernetes_version="1.35", today=ends).validate()
    with pytest.raises(ConfigError) as error:
        cluster_args(kubernetes_version="1.35", today=ends + dt.timedelta(days=1)).validate()
    assert str(error.value) == (
        f"kubernetesVersion '1.35': no Kubernetes version is in EKS standard support on "
        f"{ends + dt.timedelta(days=1)} by the calendar in components/catalog.py (as of "
        f"{catalog.CALENDAR_AS_OF}); update the catalog"
    )


def test_the_product_reads_the_pinned_clock(pinned_today):
    assert catalog.today() == pinned_today
    with pytest.raises(ConfigError, match="on 2026-11-22"):
        cluster_args(kubernetes_version="1.33").validate()


def test_canary_catalog_newest_version_is_in_standard_support():
    """The one test that reads the real date (not the pinned one): it fails on the day the
    catalog's newest version leaves EKS standard support, instead of every demo test."""
    newest = max(catalog.EKS_STANDARD_SUPPORT_ENDS, key=catalog.minor)
    ends = catalog.EKS_STANDARD_SUPPORT_ENDS[newest]
    assert dt.date.today() <= ends, (
        f"Kubernetes {newest}, the newest in components/catalog.py EKS_STANDARD_SUPPORT_ENDS, "
        f"left EKS standard support on {ends}: update catalog EKS_STANDARD_SUPPORT_ENDS and "
        "CALENDAR_AS_OF from the EKS version calendar"
    )


def test_the_offline_plan_says_its_calendar_date():
    result = plan_cli()
    assert result.returncode == 0, result.stderr
    assert (
        f"Kubernetes versions offline: the EKS calendar in components/catalog.py as of "
        f"{catalog.CALENDAR_AS_OF} (a real `pulumi up` asks EKS)."
    ) in result.stdout
