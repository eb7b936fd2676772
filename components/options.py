"""Resource options for a component's children."""

from __future__ import annotations

from typing import Any

import pulumi


def child_options(
    parent: pulumi.Resource, opts: pulumi.ResourceOptions | None, **extra: Any
) -> pulumi.ResourceOptions:
    """Parent the child to the component and give it the component's ``depends_on``.

    The engine does not hold a component's children back until the component's own
    dependencies exist, so a component that must come after something (the workload after
    the device plugin) passes that on to every child explicitly.
    """
    depends_on = opts.depends_on if opts is not None else None
    return pulumi.ResourceOptions(parent=parent, depends_on=depends_on, **extra)
