"""Benchmarks: each module runs against a server in another process on 127.0.0.1."""
