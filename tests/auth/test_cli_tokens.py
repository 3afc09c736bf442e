"""The CLI with auth on: bootstrap a token offline, create/list/revoke, use one everywhere."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import run_cli, start_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_a_team_bootstraps_and_uses_tokens_through_the_cli(tmp_path: Path) -> None:
    generated = run_cli("token", "generate", "bootstrap", "--role", "admin")
    assert generated.returncode == 0, generated.stderr
    root = generated.stdout.strip()
    assert root.startswith("qm_") and root not in generated.stderr
    (tmp_path / "tokens").write_text(generated.stderr)
    server = start_server(tmp_path, AUTH_TOKENS_FILE=str(tmp_path / "tokens"))
    try:
        as_root = {"QUEUE_MANAGER_TOKEN": root}
        created = run_cli(
            "token",
            "create",
            "ci",
            "--role",
            "operator",
            "--expires",
            "30d",
            api_url=server.url,
            env=as_root,
        )
        assert created.returncode == 0, created.stderr
        ci = created.stdout.strip()
        assert ci.startswith("qm_") and len(created.stdout.splitlines()) == 1
        assert "shown only now" in created.stderr
        assert "not enforced" not in created.stderr  # auth is on here

        started = run_cli(
            "--token", ci, "start", "--file", str(EXAMPLES / "single.json"), api_url=server.url
        )
        assert started.returncode == 0, started.stderr
        queue_id = started.stdout.strip()
        watched = run_cli(
            "watch", queue_id, "--plain", api_url=server.url, env={"QUEUE_MANAGER_TOKEN": ci}
        )
        assert watched.returncode == 0, watched.stderr
        shown = run_cli("show", queue_id, "--json", api_url=server.url, env=as_root)
        assert '"created_by": "token:ci"' in shown.stdout

        listed = run_cli("token", "list", api_url=server.url, env=as_root)
        assert listed.returncode == 0, listed.stderr
        assert "bootstrap" in listed.stdout and "ci" in listed.stdout
        assert ci not in listed.stdout and root not in listed.stdout

        assert run_cli("token", "revoke", "ci", api_url=server.url, env=as_root).returncode == 0
        refused = run_cli("--token", ci, "list", api_url=server.url)
        assert refused.returncode == 1
        assert refused.stderr.strip() == "error: invalid token"
        anonymous = run_cli("list", api_url=server.url)
        assert anonymous.returncode == 1
        assert "credential required" in anonymous.stderr
        viewer_cannot = run_cli(
            "token",
            "create",
            "x",
            "--role",
            "admin",
            api_url=server.url,
            env={"QUEUE_MANAGER_TOKEN": _viewer(server.url, root)},
        )
        assert viewer_cannot.returncode == 1
        assert "admin role required to manage API tokens" in viewer_cannot.stderr
    finally:
        server.terminate()
        server.kill_workers()


def _viewer(api_url: str, root: str) -> str:
    done = run_cli(
        "token",
        "create",
        "reader",
        "--role",
        "viewer",
        api_url=api_url,
        env={"QUEUE_MANAGER_TOKEN": root},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
