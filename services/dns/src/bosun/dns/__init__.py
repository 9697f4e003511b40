"""Bosun's cluster DNS: names for Services, from the apiserver's Services and Endpoints."""
