"""Use cases. They depend on the ports and the domain only."""
