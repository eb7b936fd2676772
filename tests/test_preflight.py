"""`python -m components preflight`: Service Quotas answered through botocore's Stubber,
which checks every request and response against the real service-quotas model."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from components.config import args_from_config
from components.tools import preflight
from components.tools.plan import stack_config
from tests.conftest import ROOT

#: The shipped stacks leave publicAccessCidrs to `make up`, which sets the deployer's own
#: address; this stands for it (a public address, not a documentation range).
FILLED_IN = '["100.20.30.40/32"]'


def stack_args(stack: str = "dev", **overrides: str):
    """The stack's args as `make up` leaves them: with the deployer's address filled in."""
    overrides.setdefault("publicAccessCidrs", FILLED_IN)
    config = stack_config(ROOT, stack, [f"{k}={v}" for k, v in overrides.items()])
    return args_from_config(config, stack)


def stack_file_as_make_up_leaves_it(folder: Path, stack: str = "dev") -> None:
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    (folder / f"Pulumi.{stack}.yaml").write_text(
        text + f"  eks-gpu-sharing:publicAccessCidrs: {FILLED_IN}\n"
    )


def stubbed(answers: dict[str, float]):
    client = boto3.client(
        "service-quotas", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    for code, value in answers.items():
        stub.add_response(
            "get_service_quota",
            {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "Value": value}},
            {"ServiceCode": "ec2", "QuotaCode": code},
        )
    stub.activate()
    return client, stub


def checked(args, client=None, why_not: str = "") -> tuple[int, str]:
    """preflight.run in us-west-2 with ``client`` (or none, because ``why_not``)."""
    out = io.StringIO()
    code = preflight.run(args, "us-west-2", lambda region, profile: (client, why_not), out)
    return code, out.getvalue()


def test_quota_below_the_stack_is_named_up_front():
    client, stub = stubbed({"L-DB2E81BA": 0.0, "L-1216C47A": 1.0})
    code, output = checked(stack_args(publicAccessCidrs='["100.20.30.40/32"]'), client)
    stub.assert_no_pending_responses()
    assert code == 1
    assert output == (
        'error: the quota "Running On-Demand G and VT instances" (L-DB2E81BA) is 0 vCPUs; the '
        "stack's ON_DEMAND GPU nodes can use 8 at their max size: ask for more in Service "
        "Quotas first (the node group would wait and fail)\n"
        'error: the quota "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances" '
        "(L-1216C47A) is 1 vCPUs; the stack's ON_DEMAND system nodes can use 2 at their max "
        "size: ask for more in Service Quotas first (the node group would wait and fail)\n")


def test_the_system_nodes_count_against_the_standard_quota_alone():
    """One t3.small (2 vCPUs) per system node, On-Demand; none without system nodes."""
    assert preflight.vcpus_needed(stack_args(systemNodes="3"))["standard", "ON_DEMAND"] == 6
    assert ("standard", "ON_DEMAND") not in preflight.vcpus_needed(stack_args(systemNodes="0"))


def test_spot_and_on_demand_are_asked_separately_and_pass_when_they_fit():
    """multi: timesliced and bottlerocket 1 x g4dn.xlarge each + exclusive max 2 x
    g4dn.2xlarge on demand = 24 vCPUs; mps 1 x g4dn.xlarge spot = 4."""
    args = stack_args("multi")
    assert preflight.vcpus_needed(args) == {
        ("G", "ON_DEMAND"): 4 + 4 + 2 * 8,
        ("G", "SPOT"): 4,
        ("standard", "ON_DEMAND"): 2,
    }
    client, stub = stubbed({"L-DB2E81BA": 24.0, "L-3819A6DF": 4.0, "L-1216C47A": 2.0})
    code, output = checked(args, client)
    stub.assert_no_pending_responses()
    assert code == 0
    assert output.startswith("ok:")


def test_without_credentials_the_aws_checks_are_skipped_and_said_why():
    code, output = checked(stack_args(), why_not="no AWS credentials")
    assert code == preflight.SKIPPED == 3
    assert output == ("skipped: the quota checks in us-west-2 (aws:region): no AWS credentials\n")


@pytest.mark.parametrize("cidr", ["203.0.113.0/24", "198.51.100.7/32", "192.0.2.0/25"])
def test_documentation_ranges_are_refused_for_a_real_up(cidr):
    code, output = checked(stack_args(publicAccessCidrs=f'["{cidr}"]'), why_not="x")
    assert code == 1
    assert output.startswith(f"error: publicAccessCidrs {cidr} is a documentation range")


@pytest.mark.parametrize("stack", ["dev", "multi"])
def test_shipped_stacks_leave_the_cidrs_to_make_up(stack):
    """A stack file we ship must be `up`-able as it is: no documentation range, no 0.0.0.0/0,
    but no address either, for `make up` to fill in the deployer's."""
    assert "eks-gpu-sharing:publicAccessCidrs" not in stack_config(ROOT, stack, [])
    assert preflight.documentation_cidrs(stack_args(stack)) == []


def test_cli_without_credentials_exits_3(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": str(ROOT),
    }
    stack_file_as_make_up_leaves_it(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "components", "preflight", "--stack", "dev"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith(
        "skipped: the quota checks in us-west-2 (aws:region): no AWS credentials"
    )


def test_a_profile_that_does_not_exist_is_said(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    assert preflight.quotas_client("us-west-2", "nope") == (
        None,
        "no AWS profile 'nope' (aws:profile) in ~/.aws",
    )


def test_a_refused_api_call_is_one_line_and_skips_the_aws_checks():
    """AccessDeniedException is one of GetServiceQuota's errors in botocore's model."""
    client = boto3.client(
        "service-quotas", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    stub.add_client_error(
        "get_service_quota",
        "AccessDeniedException",
        "User is not authorized to perform servicequotas:GetServiceQuota",
    )
    stub.activate()
    code, output = checked(stack_args(), client)
    assert code == preflight.SKIPPED
    assert output == (
        "skipped: the quota checks in us-west-2 (aws:region): An error occurred "
        "(AccessDeniedException) when calling the GetServiceQuota operation: User is not "
        "authorized to perform servicequotas:GetServiceQuota\n"
    )


def test_no_network_is_one_line_too_and_a_config_error_still_fails(tmp_path):
    """A real client whose endpoint refuses connections raises botocore's
    EndpointConnectionError (a BotoCoreError), as with no network."""
    from botocore.config import Config

    client = boto3.client(
        "service-quotas",
        region_name="us-west-2",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 0}, connect_timeout=5),
    )
    code, output = checked(stack_args(publicAccessCidrs='["203.0.113.0/24"]'), client)
    assert code == 1
    lines = output.splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "skipped"]
    assert 'Could not connect to the endpoint URL: "http://127.0.0.1:9/"' in lines[1]


def test_without_an_applied_value_the_aws_default_quota_is_used():
    """GetServiceQuota raises NoSuchResourceException when the account has no applied value
    (botocore service-quotas model); GetAWSDefaultServiceQuota has the default."""
    client = boto3.client(
        "service-quotas", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    ask = {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA"}
    stub.add_client_error(
        "get_service_quota", "NoSuchResourceException", "no applied value", expected_params=ask
    )
    stub.add_response(
        "get_aws_default_service_quota",
        {"Quota": {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA", "Value": 8.0}},
        ask,
    )
    standard = {"ServiceCode": "ec2", "QuotaCode": "L-1216C47A"}
    stub.add_response("get_service_quota", {"Quota": {**standard, "Value": 5.0}}, standard)
    stub.activate()
    code, output = checked(stack_args(publicAccessCidrs='["100.20.30.40/32"]'), client)
    stub.assert_no_pending_responses()
    assert code == 0
    assert output == (
        'ok: in us-west-2 (aws:region), the quota "Running On-Demand G and VT instances" '
        "(L-DB2E81BA, 8 vCPUs) is at least the 8 the stack's ON_DEMAND GPU nodes need at max "
        "size (instances already running count against it too)\n"
        'ok: in us-west-2 (aws:region), the quota "Running On-Demand Standard (A, C, D, H, I, '
        'M, R, T, Z) instances" (L-1216C47A, 5 vCPUs) is at least the 2 the stack\'s ON_DEMAND '
        "system nodes need at max size (instances already running count against it too)\n")


def cli(*args: str, cwd=ROOT):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run(
        [sys.executable, "-m", "components", "preflight", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_a_stack_without_a_region_is_refused_not_guessed(tmp_path):
    stack_file_as_make_up_leaves_it(tmp_path)
    stack = (tmp_path / "Pulumi.dev.yaml").read_text().replace("  aws:region: us-west-2\n", "")
    (tmp_path / "Pulumi.dev.yaml").write_text(stack)
    result = cli("--project-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == (
        "python -m components preflight: error: Pulumi.dev.yaml sets no aws:region, so "
        "preflight cannot tell which region's quotas to check: "
        "pulumi config set aws:region <region>\n"
    )


def test_a_missing_project_dir_names_the_stack_file_preflight_needs(tmp_path):
    """preflight reads only Pulumi.<stack>.yaml, not the program (none here)."""
    result = cli("--project-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (
        f"python -m components preflight: error: --stack dev: no stack file "
        f"{tmp_path}/Pulumi.dev.yaml; the stacks there: none\n"
    )
