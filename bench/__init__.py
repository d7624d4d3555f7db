"""Benchmarks of inboxlog against baselines measured in the same run (`make bench`)."""
