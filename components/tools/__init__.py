"""The tools a user runs without ``pulumi``, beside the library: they import it, never the reverse.

- :mod:`.plan` and :mod:`.mocks`: the stack program offline, under Pulumi's mock engine.
- :mod:`.cost`: what a plan costs per hour while it runs.
- :mod:`.reference`: the README's reference tables, from the Args.
- :mod:`.verify` and :mod:`.verify_checks`: does a live cluster really share its GPUs.
"""
