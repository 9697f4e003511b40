"""Bosun apiserver: the only component that talks to etcd."""
