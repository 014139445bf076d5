"""The wheel holds every module of every area under its import name (package-dir mapping works)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AREAS = {"seqmarl": "seqmarl", "theory": "seqmarl/theory", "proofs_checks": "seqmarl/proofs_checks",
         "envs": "seqmarl/envs", "algos": "seqmarl/algos"}


def _source_modules() -> set[str]:
    expected = set()
    for folder, target in AREAS.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            expected.add(f"{target}/{path.relative_to(ROOT / folder).as_posix()}")
    return expected


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True, capture_output=True, text=True,
    )
    (built,) = out.glob("seqmarl-*.whl")
    return built


def test_wheel_contains_every_module(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(m for m in _source_modules() if m not in names)
    assert not missing, f"modules missing from the wheel (add their subpackage to pyproject): {missing}"


def test_wheel_declares_console_script(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (entry,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
    text = archive.read(entry).decode()
    assert "seqmarl = seqmarl.cli:main" in text
    assert "[pytest11]" in text and "seqmarl = seqmarl.pytest_plugin" in text  # `pytest --seqmarl` from a wheel


def test_every_subpackage_is_listed() -> None:
    """Each folder with an __init__.py is a subpackage that pyproject must list."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    for folder, target in AREAS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).as_posix()
            name = target.replace("/", ".") + ("" if rel == "." else "." + rel.replace("/", "."))
            assert name in listed, f"{name} (folder {init.parent}) is not in [tool.setuptools].packages"


def test_wheel_ships_the_tuned_configs(wheel: Path) -> None:
    """`seqmarl train config=NAME` finds its YAML files in an installed wheel (package data)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(f"seqmarl/configs/{p.name}" for p in (ROOT / "seqmarl" / "configs").glob("*.yaml"))
    assert shipped, "no tuned configs in seqmarl/configs"
    missing = [name for name in shipped if name not in names]
    assert not missing, f"tuned configs missing from the wheel (pyproject [tool.setuptools.package-data]): {missing}"
