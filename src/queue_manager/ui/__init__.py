"""The dashboard: a no-build page of ES modules in `static/`, served by `api/ui.py` at /ui/.

No Python lives here; the package exists so the static files ship inside the wheel
(docs/dashboard.md explains the choice)."""
