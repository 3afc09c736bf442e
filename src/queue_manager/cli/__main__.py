"""`python -m queue_manager.cli ...` is `queue-manager ...`."""

from queue_manager.cli.main import app

app(prog_name="queue-manager")
