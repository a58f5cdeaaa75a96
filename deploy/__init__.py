"""Deployment files (nginx configuration, systemd unit, environment template) and `deploy.stack`,
which runs them on one machine: `make stack`."""
