"""The files a deployer and CI rely on say what they must."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_parses_and_runs_every_service_with_healthchecks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "whoop_service", "gateway"} <= set(services)
    for name in ("postgres", "redis", "whoop_service", "gateway"):
        assert "healthcheck" in services[name], name
    assert services["migrate"]["command"] == [
        "python",
        "-m",
        "whoop_service",
        "migrate",
    ]
    assert services["whoop_service"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["whoop_service"]["command"][:3] == [
        "uvicorn",
        "--factory",
        "whoop_service.main:create_app",
    ]
    assert services["gateway"]["command"][:3] == [
        "uvicorn",
        "--factory",
        "gateway.main:create_app",
    ]
    assert "ports" not in services["whoop_service"], "the WHOOP service is internal"


def test_ci_runs_the_readme_test_command_and_fails_on_errors():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert "make test" in ci
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme
    assert "make test" in readme


def test_secrets_and_local_state_are_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert {".env", "var/", ".venv/"} <= set(ignored)
