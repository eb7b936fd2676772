"""What Pulumi runs (see PulumiPlugin.yaml) to serve our components to other languages."""

from __future__ import annotations

from importlib.metadata import version

from eks_gpu_sharing_provider import COMPONENTS, PACKAGE
from pulumi.provider.experimental import component_provider_host

if __name__ == "__main__":
    # The schema's version is the library's, so generated SDKs say which release they wrap.
    component_provider_host(COMPONENTS, PACKAGE, version=version("eks-gpu-sharing"))
