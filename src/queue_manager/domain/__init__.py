"""Pure domain: models, rules and planning. No I/O, no framework."""
