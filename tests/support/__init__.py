"""Test harness: real servers and databases for the suite."""
