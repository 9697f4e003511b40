"""Bosun's shared client library: kinds, client, informer, work queue, leader election, telemetry."""
