"""Stepline activity workers: poll, check out, run, stream logs, heartbeat, report."""
