"""`python -m components preflight`: Service Quotas answered through botocore's Stubber,
which checks every request and response against the real service-quotas model."""

from __future__ import annotations

import io
import subprocess
import sys

import boto3
import pytest
from botocore.stub import Stubber

from components.config import args_from_config
from components.tools import preflight
from components.tools.plan import stack_config
from tests.conftest import ROOT


def stack_args(stack: str = "dev", **overrides: str):
    config = stack_config(ROOT, stack, [f"{k}={v}" for k, v in overrides.items()])
    return args_from_config(config, stack)


def stubbed(answers: dict[str, float]):
    client = boto3.client(
        "service-quotas", region_name="us-west-2", aws_access_key_id="x",
        aws_secret_access_key="x")
    stub = Stubber(client)
    for code, value in answers.items():
        stub.add_response(
            "get_service_quota",
            {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "Value": value}},
            {"ServiceCode": "ec2", "QuotaCode": code},
        )
    stub.activate()
    return client, stub


def test_quota_below_the_stack_is_named_up_front():
    client, stub = stubbed({"L-DB2E81BA": 0.0})
    out = io.StringIO()
    code = preflight.run(stack_args(publicAccessCidrs='["100.20.30.40/32"]'), "us-west-2",
                         lambda region, profile: (client, ""), out)
    stub.assert_no_pending_responses()
    assert code == 1
    assert out.getvalue() == (
        'error: the quota "Running On-Demand G and VT instances" (L-DB2E81BA) is 0 vCPUs; the '
        "ON_DEMAND node groups can use 4 at their max size: ask for more in Service Quotas "
        "first (the node group would wait and fail)\n")


def test_spot_and_on_demand_are_asked_separately_and_pass_when_they_fit():
    """multi: timesliced 1 x g4dn.xlarge + exclusive max 2 x g4dn.2xlarge on demand = 20
    vCPUs; mps 1 x g4dn.xlarge spot = 4."""
    args = stack_args("multi")
    assert preflight.vcpus_needed(args) == {"ON_DEMAND": 4 + 2 * 8, "SPOT": 4}
    client, stub = stubbed({"L-DB2E81BA": 20.0, "L-3819A6DF": 4.0})
    out = io.StringIO()
    assert preflight.run(args, "us-west-2", lambda region, profile: (client, ""), out) == 0
    stub.assert_no_pending_responses()
    assert out.getvalue().startswith("ok:")


def test_without_credentials_the_aws_checks_are_skipped_and_said_why():
    out = io.StringIO()
    code = preflight.run(stack_args(), "us-west-2",
                         lambda region, profile: (None, "no AWS credentials"), out)
    assert code == preflight.SKIPPED == 3
    assert out.getvalue() == "skipped the AWS checks (quotas): no AWS credentials\n"


@pytest.mark.parametrize("cidr", ["203.0.113.0/24", "198.51.100.7/32", "192.0.2.0/25"])
def test_documentation_ranges_are_refused_for_a_real_up(cidr):
    out = io.StringIO()
    code = preflight.run(stack_args(publicAccessCidrs=f'["{cidr}"]'), "us-west-2",
                         lambda region, profile: (None, "x"), out)
    assert code == 1
    assert out.getvalue().startswith(f"error: publicAccessCidrs {cidr} is a documentation range")


@pytest.mark.parametrize("stack", ["dev", "multi"])
def test_shipped_stacks_use_no_documentation_range(stack):
    """A stack file we ship must be `up`-able as it is."""
    assert preflight.documentation_cidrs(stack_args(stack)) == []


def test_cli_without_credentials_exits_3(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true",
           "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "components", "preflight", "--stack", "dev"],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("skipped the AWS checks (quotas): no AWS credentials")


def test_a_profile_that_does_not_exist_is_said(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    assert preflight.quotas_client("us-west-2", "nope") == (
        None, "no AWS profile 'nope' (aws:profile) in ~/.aws")
