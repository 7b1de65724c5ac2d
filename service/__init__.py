"""Stepline web process and rq jobs: webhooks, run index, GitHub reporting, dashboard, API."""
