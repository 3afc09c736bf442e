"""HTTP and WebSocket API (docs/api.md)."""
