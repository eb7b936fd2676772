"""Shared checks that mirror a provider's rule: each cites the rule's source."""

from __future__ import annotations

import pytest

from components import ConfigError
from components.validation import cidrs, node_labels


@pytest.mark.parametrize(
    "labels",
    [
        {"team": "ml"},
        {"example.com/team": "ml-1.a_b"},
        {"a" * 63: "b" * 63},
        {"k8s.example.com/" + "n" * 30: "v"},
    ],
)
def test_node_labels_eks_and_kubernetes_accept(labels):
    node_labels("labels", labels)


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        # botocore eks labelKey / labelValue: 1 to 63 characters, a key's prefix included.
        ({"a" * 64: "v"}, "labels key 'aaa"),
        ({"example.com/" + "a" * 52: "v"}, "at most 63 characters in all"),
        ({"team": "v" * 64}, "labels['team']"),
        ({"team": ""}, "is not a node label value: 1 to 63"),
        # kubernetes/apimachinery IsQualifiedName, IsValidLabelValue.
        ({"-team": "ml"}, "labels key '-team' is not a node label key"),
        ({"Example.com/team": "ml"}, "labels key 'Example.com/team'"),
        ({"a/b/c": "ml"}, "labels key 'a/b/c'"),
        (
            {"team": "ml team"},
            "labels['team'] 'ml team' is not a node label value: 1 to 63 letters, digits, -, _ "
            "and . between alphanumerics",
        ),
        ({"team": 5}, "must be a map of strings to strings"),
    ],
)
def test_node_labels_a_provider_would_refuse_are_refused_now(labels, words):
    with pytest.raises(ConfigError) as error:
        node_labels("labels", labels)
    assert words in str(error.value)


def test_a_node_group_checks_its_labels():
    from components import GpuNodeGroupArgs

    with pytest.raises(ConfigError, match="^labels key 'a{64}'"):
        GpuNodeGroupArgs(labels={"a" * 64: "v"}).validate_settings()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("10.0.0.0/8", "f must be a non-empty list of CIDR blocks, got '10.0.0.0/8'"),
        (5, "f must be a non-empty list of CIDR blocks, got 5"),
        ([], "f must be a non-empty list of CIDR blocks, got []"),
        (
            # botocore's eks model, VpcConfigRequest.publicAccessCidrs: IPv4 clusters only.
            ["::/0"],
            "f[0] '::/0' is IPv6; the cluster is IPv4, and EKS accepts only IPv4 blocks for its "
            "public endpoint",
        ),
        (["10.0.0.1/8"], "f[0] '10.0.0.1/8' is not a CIDR block (10.0.0.1/8 has host bits set)"),
    ],
)
def test_cidrs_are_a_list_of_ipv4_blocks(values, message):
    with pytest.raises(ConfigError) as error:
        cidrs("f", values)
    assert str(error.value) == message
