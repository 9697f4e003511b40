"""Bosun scheduler: binds pending pods to nodes through filter and score plugins."""
