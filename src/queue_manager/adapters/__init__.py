"""One module per external system, each implementing a port of `queue_manager.ports`."""
