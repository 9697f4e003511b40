"""Bosun's shared library: kinds, client, informer, work queue, leader election, telemetry."""
