"""CrossGuard policy pack for eks-gpu-sharing stacks (see policy/__main__.py)."""
