"""The dashboard side of the web process: pages, the JSON API, sign-in, actions, badges and metrics."""
