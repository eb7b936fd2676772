"""Fuzzed stack config: every value is either accepted or rejected with a ConfigError.

A person can type anything into ``pulumi config set``; what comes back must be a message
naming the key, never a traceback from deep inside a component.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from components import ConfigError, GpuSharingArgs, args_from_config
from components.config import KEYS, NAMESPACE, SHARING_STRATEGIES
from tests.conftest import ROOT

TODAY = dt.date(2026, 11, 22)

SIZES = ["0", "1", "2", "3", "100", "101", "-1", "1e3", "true", ""]
#: Per key, values a person might mean, so fuzzing gets past the first check of each key.
PLAUSIBLE: dict[str, list[str]] = {
    "kubernetesVersion": ["1.34", "1.35", "1.29", "1.36", "v1.35", " 1.35 "],
    "gpuInstanceType": ["g4dn.xlarge", "g4dn.12xlarge", "g4dn.metal", "p4d.24xlarge", "m5.large"],
    "gpuAmiType": [
        "AL2023_x86_64_NVIDIA",
        "BOTTLEROCKET_x86_64_NVIDIA",
        "AL2_x86_64_GPU",
        "CUSTOM",
    ],
    "gpuCapacityType": ["ON_DEMAND", "SPOT", "spot", " "],
    "gpuNodeDesired": SIZES,
    "gpuNodeMin": SIZES,
    "gpuNodeMax": SIZES,
    "timeSlicingReplicas": ["1", "2", "5", "48", "0", "4294967296"],
    "verificationPods": ["0", "1", "3", "5", "48", "1000", "1001"],
    "verificationMode": ["nvidia-smi", "measure", "bench"],
    "devicePluginVersion": ["v0.17.0", "v0.20.0", "v0.19.3", "v0.16.2", "latest", "0.20.0"],
    "publicAccessCidrs": ['["203.0.113.7/32"]', '["10.0.0.0/33"]', "[]", '"0.0.0.0/0"', '["::/0"]'],
}


def plausible(key: str) -> list[str]:
    """A key added since this table was written is tried with its documented default."""
    default = KEYS[key][1]
    return PLAUSIBLE.get(key, [default if isinstance(default, str) else json.dumps(default)])


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
sharing = st.fixed_dictionaries(
    {"strategy": st.sampled_from([*SHARING_STRATEGIES, "MPS", 3])},
    optional={"replicas": st.integers(-2, 10**9) | json_leaves, "renameByDefault": json_leaves},
)
node_group = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["gpu", "a", "b", "default", "Bad Name", ""]) | json_leaves,
        "sharing": sharing | json_values,
        "instanceType": st.sampled_from(PLAUSIBLE["gpuInstanceType"]) | json_leaves,
        "amiType": st.sampled_from(PLAUSIBLE["gpuAmiType"]) | json_leaves,
        "capacityType": st.sampled_from(PLAUSIBLE["gpuCapacityType"]) | json_leaves,
        **{size: st.integers(-1, 101) | json_leaves for size in ("desired", "min", "max")},
    },
)
anything = st.text(max_size=30) | st.integers().map(str) | json_values.map(json.dumps)
#: Pulumi hands a program strings; a few non-strings check the guard against them.
not_strings = st.sampled_from([None, 5, ["a"]])


def value_for(key: str) -> st.SearchStrategy[Any]:
    """Mostly values shaped for ``key``, so fuzzing gets past its first check, else anything."""
    shaped = (
        st.lists(node_group, min_size=1, max_size=3).map(json.dumps)
        if key == "nodeGroups"
        else st.sampled_from(plausible(key))
    )
    return st.one_of(shaped, shaped, shaped, shaped, anything)


junk = st.dictionaries(
    st.text(max_size=15).map(lambda k: f"{NAMESPACE}:{k}")
    | st.sampled_from(["aws:region", "eks-gpu-sharing", "kubernetes:context", ""]),
    anything | not_strings,
    max_size=2,
)
ours = st.lists(st.sampled_from(sorted(KEYS)), unique=True, max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({f"{NAMESPACE}:{k}": value_for(k) for k in keys})
)
configs = st.builds(lambda a, b: {**a, **b}, ours, st.one_of(*[st.just({})] * 4, junk))


@settings(max_examples=1000, deadline=500, database=None)
@given(configs)
def test_config_is_accepted_or_rejected_with_a_config_error(values):
    try:
        args = args_from_config(values, "fuzz", today=TODAY)
    except ConfigError as e:
        assert str(e)
        return
    assert isinstance(args, GpuSharingArgs)
    if args.verification_pods:
        assert args.verification_pods <= args.advertised_slices(args.verification_config_key)


argv_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=20,
)


@settings(max_examples=4, deadline=None, database=None)
@given(
    st.sampled_from(sorted(KEYS)),
    st.sampled_from(sorted({v for values in PLAUSIBLE.values() for v in values}))
    | argv_text
    | st.lists(node_group, max_size=2).map(json.dumps),
)
def test_plan_cli_reports_bad_config_without_a_traceback(key, value):
    result = subprocess.run(
        [sys.executable, "-m", "components", "plan", f"--config={key}={value}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert "Traceback (most recent call last)" not in output, output
    assert result.returncode in (0, 1), output
    if result.returncode == 1:
        assert result.stderr.startswith("python -m components plan: error: "), output
