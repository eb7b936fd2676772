"""The one exception type users see when input is wrong."""

from __future__ import annotations


class ConfigError(ValueError):
    """Invalid configuration or component Args.

    The message is written for a person: it names the key or field, what was
    given and what is allowed. It is raised once, where input enters
    (stack config -> Args, or Args -> component), before any resource exists.
    """
