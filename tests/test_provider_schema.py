"""The multi-language package in provider/: its schema, as `pulumi package add` would get it.

The schema comes from the SDK's own ComponentProvider, which is what
``component_provider_host`` serves; nothing here needs the Pulumi CLI. Constructing the
components goes through the same provider with inputs as the engine delivers them.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import sys
import typing
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.experimental.util import camel_case
from typing_extensions import NotRequired

import components
from components.tools import plan as planner
from tests.conftest import OWN_CIDRS, ROOT, cluster_args

PROVIDER_DIR = ROOT / "provider"
sys.path.insert(0, str(PROVIDER_DIR))
import eks_gpu_sharing_provider as adapters  # noqa: E402

SOURCE = PROVIDER_DIR / "eks_gpu_sharing_provider.py"
INPUTS = {
    adapters.GpuSharing: adapters.GpuSharingInputs,
    adapters.GpuNodeGroup: adapters.GpuNodeGroupInputs,
    adapters.NvidiaDevicePlugin: adapters.NvidiaDevicePluginInputs,
    adapters.VerificationWorkload: adapters.VerificationWorkloadInputs,
}
#: Inputs of an adapter that are no field of the library's Args, and why.
ADAPTER_ONLY = {
    "sharing": "with replicas, becomes the PluginConfig no other language can build",
    "replicas": "see sharing",
    "kubeconfig": "becomes the Kubernetes provider no other language can pass",
}
SCHEMA_TYPES = {str: "string", int: "integer", list: "array", dict: "object"}


@pytest.fixture(scope="module")
def provider() -> ComponentProvider:
    return ComponentProvider(adapters.COMPONENTS, adapters.PACKAGE, version="0.1.0")


@pytest.fixture(scope="module")
def schema(provider: ComponentProvider) -> dict[str, Any]:
    assert provider.schema is not None
    return json.loads(provider.schema)


def token(component: type) -> str:
    return f"{adapters.PACKAGE}:index:{component.__name__}"


def attribute_docstrings(class_name: str) -> dict[str, str]:
    """Each annotated attribute's docstring, read from the source independently of the SDK."""
    tree = ast.parse(SOURCE.read_text())
    body = next(n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = after.value.value
    return docs


def annotation_type(annotation: Any) -> type:
    """The plain type under NotRequired[...], pulumi.Input[...] (a Union) and generics."""
    while typing.get_origin(annotation) in (NotRequired, typing.Union):
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    return {None: annotation, Sequence: list}.get(origin, origin)


def fields(typed_dict: Any) -> Iterator[tuple[str, Any, bool]]:
    """(name, annotation, required) of each input, as the SDK reads them: unevaluated."""
    for name, annotation in typed_dict.__annotations__.items():
        yield name, annotation, name in typed_dict.__required_keys__


def test_schema_lists_the_four_components_with_their_docstrings(schema):
    assert schema["name"] == "eks-gpu-sharing"
    assert set(schema["resources"]) == {token(c) for c in adapters.COMPONENTS}
    for component in adapters.COMPONENTS:
        resource = schema["resources"][token(component)]
        assert resource["isComponent"] is True
        assert resource["description"] == component.__doc__.strip()


@pytest.mark.parametrize("component", adapters.COMPONENTS, ids=lambda c: c.__name__)
def test_every_input_is_in_the_schema_with_its_type_and_docstring(schema, component):
    resource = schema["resources"][token(component)]
    inputs = INPUTS[component]
    docs = attribute_docstrings(inputs.__name__)
    expected = {camel_case(name): (name, annotation) for name, annotation, _ in fields(inputs)}
    assert set(resource["inputProperties"]) == set(expected)
    for key, (name, annotation) in expected.items():
        prop = resource["inputProperties"][key]
        assert prop["type"] == SCHEMA_TYPES[annotation_type(annotation)], key
        assert prop["description"] == docs[name], key
        assert "\n" not in prop["description"], f"{key}: one line reads best in every SDK"
        if prop["type"] == "array":
            assert prop["items"]["type"] == "string"
        if prop["type"] == "object":
            assert prop["additionalProperties"]["type"] == "string"
    required = sorted(camel_case(name) for name, _, req in fields(inputs) if req)
    assert resource["requiredInputs"] == required


def test_required_inputs_are_what_the_library_cannot_default(schema):
    required = {
        c.__name__: schema["resources"][token(c)]["requiredInputs"] for c in adapters.COMPONENTS
    }
    assert required == {
        "GpuSharing": ["publicAccessCidrs"],
        "GpuNodeGroup": ["clusterName", "subnetIds"],
        "NvidiaDevicePlugin": ["kubeconfig"],
        "VerificationWorkload": ["kubeconfig"],
    }


def test_only_cluster_outputs_are_inputs_other_programs_may_pass_late(schema):
    """Plain inputs are validated before any resource exists; outputs of other resources
    (a cluster name, subnets, a kubeconfig) cannot be, so only those are non-plain."""
    late = {
        (c.__name__, key)
        for c in adapters.COMPONENTS
        for key, prop in schema["resources"][token(c)]["inputProperties"].items()
        if not prop.get("plain")
    }
    assert late == {
        ("GpuNodeGroup", "clusterName"),
        ("GpuNodeGroup", "subnetIds"),
        ("NvidiaDevicePlugin", "kubeconfig"),
        ("VerificationWorkload", "kubeconfig"),
    }


@pytest.mark.parametrize("component", adapters.COMPONENTS, ids=lambda c: c.__name__)
def test_every_output_is_in_the_schema_with_its_docstring(schema, component):
    properties = schema["resources"][token(component)]["properties"]
    docs = attribute_docstrings(component.__name__)
    assert set(properties) == {camel_case(name) for name in docs}
    for name, doc in docs.items():
        assert properties[camel_case(name)]["description"] == doc


def _library_fields(*args_types: type) -> set[str]:
    return {f.name for cls in args_types for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(
    ("inputs", "library"),
    [
        (
            adapters.GpuSharingInputs,
            (components.GpuSharingArgs, components.GpuClusterArgs, components.GpuNodeGroupArgs),
        ),
        (adapters.GpuNodeGroupInputs, (components.GpuNodeGroupArgs,)),
        (adapters.NvidiaDevicePluginInputs, (components.NvidiaDevicePluginArgs,)),
        (adapters.VerificationWorkloadInputs, (components.VerificationWorkloadArgs,)),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_inputs_are_library_fields_by_the_same_name(inputs, library):
    """So the library's Args take them as they are; the rest are the adapter's own."""
    own = {name for name, _, _ in fields(inputs)} - _library_fields(*library)
    assert own <= set(ADAPTER_ONLY), f"{inputs.__name__}: {own - set(ADAPTER_ONLY)}"


def test_every_gpu_sharing_input_is_routed_somewhere():
    routed = {
        *adapters.CLUSTER_INPUTS,
        *adapters.NODE_GROUP_INPUTS,
        *adapters.STACK_INPUTS,
        *adapters.SHARING_INPUTS,
        *adapters.SYSTEM_INPUTS,
    }
    assert {name for name, _, _ in fields(adapters.GpuSharingInputs)} == routed


def test_inputs_left_out_keep_the_library_defaults():
    args = adapters.gpu_sharing_args({"public_access_cidrs": list(OWN_CIDRS)})
    default = components.GpuSharingArgs(cluster=cluster_args())
    assert args.plugin_configs == default.plugin_configs
    assert args.node_groups == default.node_groups
    assert args.cluster == default.cluster
    assert args.device_plugin_version == default.device_plugin_version
    assert args.verification_pods == default.verification_pods
    assert args.system_nodes == default.system_nodes == components.SystemNodeGroupArgs()


def test_system_nodes_become_the_library_system_group():
    def system(nodes: int) -> components.SystemNodeGroupArgs | None:
        given = {"public_access_cidrs": list(OWN_CIDRS), "system_nodes": nodes}
        return adapters.gpu_sharing_args(typing.cast(adapters.GpuSharingInputs, given)).system_nodes

    assert system(2) == components.SystemNodeGroupArgs(nodes=2)
    assert system(0) is None


def test_sharing_and_replicas_become_the_library_config():
    def config(**inputs: Any) -> components.PluginConfig:
        given = {"verification_pods": 0, "public_access_cidrs": list(OWN_CIDRS), **inputs}
        args = adapters.gpu_sharing_args(typing.cast(adapters.GpuSharingInputs, given))
        return args.plugin_configs["default"]

    assert config(replicas=3) == components.time_slicing(3)
    assert config(sharing="mps", replicas=2) == components.mps(2)
    assert config(sharing="none") == components.unshared()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"sharing": "mig"}, "sharing 'mig'; use one of time-slicing, mps, none"),
        ({"sharing": "mps"}, "sharing 'mps' needs replicas"),
        ({"sharing": "none", "replicas": 3}, "replicas is for sharing time-slicing or mps"),
        ({"instance_type": "t3.large"}, "gpuInstanceType 't3.large'"),
        ({"desired_size": 2.5}, "must be an integer, got 2.5"),
        ({"system_nodes": 11}, "systemNodes must be between 1 and 10, got 11"),
    ],
)
def test_bad_inputs_are_refused_before_anything_is_registered(inputs, message):
    with pytest.raises(components.ConfigError, match=re.escape(message)):
        adapters.gpu_sharing_args({"public_access_cidrs": list(OWN_CIDRS), **inputs})


def construct(provider: ComponentProvider, component: type, inputs: dict[str, Any]) -> None:
    provider.construct("demo", token(component), inputs, None)


def test_construct_with_engine_inputs_builds_the_library_components(provider):
    """Numbers arrive as doubles, names in camelCase, as from a TypeScript program."""
    plan = planner.record(
        lambda: construct(
            provider,
            adapters.GpuSharing,
            {
                "instanceType": "g4dn.2xlarge",
                "replicas": 3.0,
                "verificationPods": 3.0,
                "publicAccessCidrs": list(OWN_CIDRS),
            },
        ),
        "test",
        {"aws:region": "us-west-2"},
    )
    top = [r for r in plan.resources if r["type"] == "eks-gpu-sharing:index:GpuSharing"]
    assert [r["parent"].rsplit("::", 1)[-1] for r in top] == ["eks-gpu-sharing-test", "demo"]
    group = plan.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")
    assert group["inputs"]["instanceTypes"] == ["g4dn.2xlarge"]
    (pods,) = [r for r in plan.by_type("kubernetes:apps/v1:Deployment")
               if r["name"].endswith("-pods")]  # the other: the pod without a slice
    assert pods["inputs"]["spec"]["replicas"] == 3
    assert plan.one("eks:index:Cluster")["inputs"]["name"] == "demo-cluster"


def test_construct_device_plugin_from_a_kubeconfig_uses_it_for_every_object(provider):
    plan = planner.record(
        lambda: construct(
            provider,
            adapters.NvidiaDevicePlugin,
            {"kubeconfig": "apiVersion: v1\nkind: Config\n", "sharing": "mps", "replicas": 2.0},
        ),
        "test",
        {"aws:region": "us-west-2"},
    )
    kube = plan.one("pulumi:providers:kubernetes")
    objects = [r for r in plan.resources if r["type"].startswith("kubernetes:")]
    assert objects and all(r["provider"].startswith(kube["urn"] + "::") for r in objects)
    # MPS brings its control daemon beside the plugin.
    assert len(plan.by_type("kubernetes:apps/v1:DaemonSet")) == 2
    assert not [r for r in plan.resources if r["type"].startswith(("aws:", "eks:"))]


# --- examples/typescript: what it uses must be in the schema (it is not run) ---

TYPESCRIPT = (ROOT / "examples" / "typescript" / "index.ts").read_text()


def _typescript_inputs() -> Iterator[tuple[str, str]]:
    for match in re.finditer(r"new gpu\.(\w+)\(\s*\"[^\"]+\",\s*\{(.*?)\}", TYPESCRIPT, re.S):
        for part in match.group(2).split(","):
            if part.strip():
                yield match.group(1), part.split(":")[0].strip()


def test_typescript_example_uses_only_inputs_and_outputs_of_the_schema(schema):
    used = list(_typescript_inputs())
    assert {component for component, _ in used} == {
        "GpuSharing",
        "NvidiaDevicePlugin",
        "VerificationWorkload",
    }
    for component, key in used:
        assert key in schema["resources"][f"eks-gpu-sharing:index:{component}"]["inputProperties"]
    outputs = schema["resources"]["eks-gpu-sharing:index:GpuSharing"]["properties"]
    for key in re.findall(r"= (?:pulumi\.secret\()?sharing\.(\w+)", TYPESCRIPT):
        assert key in outputs
