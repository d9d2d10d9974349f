"""What is installed is what pyproject.toml declares, pinned: requirements/*.txt (`make lock`).

`make test`, CI and the Docker image install only from the lock files, so a dependency added to
pyproject.toml (or a raised floor) without `make lock` fails here rather than in production.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from gateway.main import create_app as create_gateway
from gateway.settings import GatewaySettings
from whoop_service.main import create_app as create_whoop_service
from whoop_service.settings import WhoopSettings

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "health-backend (pyproject.toml)"
# The Python and platform the lock must serve: CI, the developers' machines and the image.
TARGET = {
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
    "os_name": "posix",
}


@dataclass
class Pin:
    version: Version
    marker: Marker | None
    hashes: int = 0
    via: set[str] = field(default_factory=set)

    def applies(self, environment: dict[str, str] = TARGET) -> bool:
        return self.marker is None or self.marker.evaluate(environment | {"extra": ""})


def read_lock(name: str) -> dict[str, list[Pin]]:
    """Each pinned package of a uv/pip-tools requirements file, with its hashes and `# via`."""
    pins: dict[str, list[Pin]] = {}
    current: Pin | None = None
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        text = line.strip().removesuffix("\\").strip()
        if not text:
            continue
        if line[0].isalnum():
            requirement = Requirement(text)
            [clause] = requirement.specifier  # exactly one clause: `==version`
            assert clause.operator == "==", f"{name}: {text} is not pinned"
            current = Pin(Version(clause.version), requirement.marker)
            pins.setdefault(canonicalize_name(requirement.name), []).append(current)
        elif current is not None and text.startswith("--hash="):
            current.hashes += 1
        elif current is not None and text.startswith("#"):
            source = re.sub(r"^#\s*(via\s*)?", "", text).strip()
            if source:
                current.via.add(source)
    return pins


def declared(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = (
        project["dependencies"]
        if extra is None
        else project["optional-dependencies"][extra]
    )
    return [Requirement(text) for text in found]


def with_extras(requirement: Requirement) -> list[Requirement]:
    """The requirement and what its extras add (read from the installed distribution)."""
    added = []
    for extra in requirement.extras:
        for text in importlib.metadata.requires(requirement.name) or []:
            needed = Requirement(text)
            if needed.marker is not None and needed.marker.evaluate(
                TARGET | {"extra": extra}
            ):
                needed.marker = None
                added.append(needed)
    return [requirement, *added]


def assert_pinned(requirement: Requirement, lock: dict[str, list[Pin]], name: str):
    pins = [p for p in lock.get(canonicalize_name(requirement.name), []) if p.applies()]
    assert pins, f"{requirement.name} is not in requirements/{name}: run `make lock`"
    for pin in pins:
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"requirements/{name} pins {requirement.name}=={pin.version}, outside "
            f"{requirement.specifier}: run `make lock`"
        )


@pytest.mark.parametrize(
    ("lock_name", "extras"), [("prod.txt", [None]), ("dev.txt", [None, "dev"])]
)
def test_every_declared_dependency_is_pinned_within_its_range(lock_name, extras):
    lock = read_lock(lock_name)
    for extra in extras:
        for requirement in declared(extra):
            if requirement.marker is None or requirement.marker.evaluate(TARGET):
                for needed in with_extras(requirement):
                    assert_pinned(needed, lock, lock_name)


def test_the_lock_files_list_no_dependency_pyproject_dropped():
    prod = {canonicalize_name(r.name) for r in declared()}
    dev = {canonicalize_name(r.name) for r in declared("dev")}
    for lock_name, allowed in (("prod.txt", prod), ("dev.txt", prod | dev)):
        for name, pins in read_lock(lock_name).items():
            if any(PROJECT in pin.via for pin in pins):
                assert name in allowed, (
                    f"{lock_name} still pins {name}: run `make lock`"
                )


def test_tests_run_on_the_versions_the_image_installs():
    """dev.txt is prod.txt plus the tools: the same version of every production package."""
    prod, dev = read_lock("prod.txt"), read_lock("dev.txt")
    for name, pins in prod.items():
        assert {p.version for p in pins} == {p.version for p in dev.get(name, [])}, name


def test_the_production_lock_holds_no_development_tool():
    """A dev dependency is in prod.txt only when a production package needs it (pyyaml)."""
    prod = read_lock("prod.txt")
    for requirement in declared("dev"):
        for pin in prod.get(canonicalize_name(requirement.name), []):
            assert PROJECT not in pin.via, requirement.name
    for tool in ("pytest", "ruff", "mypy", "uv", "python-multipart"):
        assert tool not in prod


@pytest.mark.parametrize("lock_name", ["prod.txt", "dev.txt"])
def test_every_pin_is_hash_checked(lock_name):
    for name, pins in read_lock(lock_name).items():
        assert all(pin.hashes for pin in pins), f"{lock_name}: {name} has no hash"


def test_the_venv_has_what_the_lock_pins():
    """A venv older than the lock (make re-installs when a lock file changes) shows here."""
    here = cast(dict[str, str], default_environment())
    for name, pins in read_lock("dev.txt").items():
        for pin in pins:
            if pin.applies(here):
                installed = Version(importlib.metadata.version(name))
                assert installed == pin.version, f"{name} {installed} != {pin.version}"


def test_no_production_route_parses_forms(tmp_path):
    """python-multipart is a development dependency only while this holds."""
    apps = [
        create_gateway(
            GatewaySettings(_env_file=None, var_dir=tmp_path, whoop_service_api_key="k")
        ),
        create_whoop_service(
            WhoopSettings(
                _env_file=None, var_dir=tmp_path, database_url="sqlite+aiosqlite://"
            )
        ),
    ]
    for app in apps:
        for path, operations in app.openapi()["paths"].items():
            for operation in operations.values():
                content = operation.get("requestBody", {}).get("content", {})
                assert not {
                    "multipart/form-data",
                    "application/x-www-form-urlencoded",
                } & set(content), path
    for package in ("gateway", "whoop_service", "shared"):
        for source in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                if isinstance(node, ast.Attribute) and node.attr == "form":
                    pytest.fail(f"{source.relative_to(ROOT)} reads a form")
