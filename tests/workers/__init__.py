"""Tests of the build workers: logs, checkout, running steps, and the poll loop against the real engine."""
