"""HTTP and WebSocket API (SPEC §3)."""
