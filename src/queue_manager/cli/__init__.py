"""The `queue-manager` command line (typer + rich): serve, start, stop, list, show, watch."""
