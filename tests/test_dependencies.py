"""Dependency ranges in pyproject.toml: floors past known advisories, ceilings where private parts are used."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


def requirements(name: str) -> list[Requirement]:
    """Every requirement on ``name`` in the dependencies and the extras."""
    project = PYPROJECT["project"]
    lines = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    found = [Requirement(line) for line in lines if Requirement(line).name == name]
    assert found, f"{name} is not required anywhere"
    return found


@pytest.mark.parametrize(("name", "vulnerable", "why"), [
    ("gunicorn", "21.2.0", "CVE-2024-1135 request smuggling (conflicting Transfer-Encoding), fixed in 22.0.0"),
    ("gunicorn", "22.0.0", "CVE-2024-6827 request smuggling (Transfer-Encoding fallback), fixed in 23.0.0"),
    ("requests", "2.31.0", "CVE-2024-35195 verify=False kept for the pooled connection, fixed in 2.32.0"),
    ("requests", "2.32.3", "CVE-2024-47081 .netrc credentials sent for a crafted URL, fixed in 2.32.4"),
])
def test_floors_exclude_versions_with_known_advisories(name: str, vulnerable: str, why: str) -> None:
    for requirement in requirements(name):
        assert Version(vulnerable) not in requirement.specifier, f"{requirement} allows {vulnerable}: {why}"
        assert Version(version(name)) in requirement.specifier, f"installed {name} outside {requirement}"


@pytest.mark.parametrize(("name", "private"), [
    ("pika", "pika.connection.Connection._output_marshaled_frames (sink_lib/publisher.py writes frames.py's)"),
    ("limits", "MemoryStorage.__schedule_expiry/__expire_events (emergency_api/limits.py overrides them)"),
])
def test_libraries_whose_private_parts_are_used_have_a_ceiling(name: str, private: str) -> None:
    for requirement in requirements(name):
        ceilings = [spec for spec in requirement.specifier if spec.operator in ("<", "<=", "~=", "==")]
        assert ceilings, f"{requirement}: no upper bound, yet the code relies on {private}"
        assert Version(version(name)) in requirement.specifier


def test_the_private_hooks_exist_in_the_installed_versions() -> None:
    # the ceilings above are only worth something if the versions inside them have what the code uses
    import pika.connection
    from limits.storage import MemoryStorage

    assert callable(getattr(pika.connection.Connection, "_output_marshaled_frames", None))
    assert callable(getattr(MemoryStorage, "_MemoryStorage__schedule_expiry", None))
    assert callable(getattr(MemoryStorage, "_MemoryStorage__expire_events", None))
