"""bosunctl: a kubectl-like command line for Bosun."""
