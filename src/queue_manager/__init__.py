"""queue-manager: the control plane of the StreamForge market-data platform."""

__version__ = "0.1.0"
