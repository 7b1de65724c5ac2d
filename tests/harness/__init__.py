"""Test harness shared by every test: real Redis, a fake GitHub REST server, git repositories, processes."""
