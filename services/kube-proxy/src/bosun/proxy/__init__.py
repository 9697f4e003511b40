"""Bosun's kube-proxy: Services and Endpoints in, iptables nat/filter rules out."""
