"""Bosun controller-manager: one process hosting the cluster's reconcile loops."""
