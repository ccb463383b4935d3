"""Credentials: how obpilot logs in to hosts over SSH (a username with a password or a
private key). Secrets are stored encrypted with the instance's secret key and are never
returned by the API or written to a log."""
