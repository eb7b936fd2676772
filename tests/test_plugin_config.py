"""The device plugin's config model against the rules of the plugin (v0.20.0) it is pinned to."""

from __future__ import annotations

from typing import Any

import pytest

from components.errors import ConfigError
from components.plugin_config import advertised_units, mps, time_slicing, unshared


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (time_slicing(5).to_dict(), {"nvidia.com/gpu": 5}),
        (time_slicing(5, rename_by_default=True).to_dict(), {"nvidia.com/gpu.shared": 5}),
        (mps(3).to_dict(), {"nvidia.com/gpu": 3}),
        (unshared().to_dict(), {"nvidia.com/gpu": 1}),
        ({"version": "v1"}, {"nvidia.com/gpu": 1}),
        (
            {"sharing": {"timeSlicing": {"resources": [{"name": "gpu", "replicas": 4}]}}},
            {"nvidia.com/gpu": 4},
        ),
    ],
)
def test_advertised_units(config: dict[str, Any], expected: dict[str, int]) -> None:
    assert advertised_units(config) == expected


def test_advertised_units_refuses_a_config_the_plugin_would_refuse() -> None:
    bad = {"version": "v1", "sharing": {"timeSlicing": {"resources": [{"replicas": 4}]}}}
    with pytest.raises(ConfigError, match=r"config\.sharing\.timeSlicing\.resources\[0\]\.name"):
        advertised_units(bad)
