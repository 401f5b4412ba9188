"""Build the Lambda layer for python3.12 without Docker, and check that it fits.

pip downloads ready-made Linux wheels for the target platform (no compiler, no container):
the ``[project] dependencies`` of ``pyproject.toml`` with their dependencies, then those named
in ``[tool.jobworker.layer] no-deps`` without theirs (PyVRP: its plotting stack stays out).
The ``jobworker`` package is copied next to them, without its dev kit (``jobworker.dev``);
``strip-paths`` are removed (OSRM's command-line tools: the module stays).
The result is ``<out>/python/...``, the layout Lambda puts on
``sys.path`` from ``/opt/python``.

    python infra/build_layer.py                       # build/layer, arm64
    python infra/build_layer.py --arch x86_64 --out build/layer-x86
    python infra/build_layer.py --out "$ARTIFACTS_DIR"  # what `sam build` runs (layer/Makefile)

Exits non-zero when pip fails or the unzipped layer is larger than ``--max-mb``.
"""

from __future__ import annotations

import argparse
import compileall
import py_compile
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER_SOURCE = ROOT / "layer"
PACKAGE = "jobworker"
PYPROJECT = ROOT / "pyproject.toml"
CA_BUNDLE = Path(PACKAGE) / "aws" / "certs" / "rds-ca-bundle.pem"  # see its README

TARGET_PYTHON = (3, 12)
# Lambda's python3.12 runtime is Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to
# 2_34 runs there. pip does not widen an explicit --platform, so every tag is listed.
MANYLINUX_TAGS = ("manylinux2014", "manylinux_2_17", "manylinux_2_28", "manylinux_2_34")
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}

# The runtime ships these (the X-Ray SDK pulls botocore in); a copy in the layer would only
# shadow the runtime's and add ~30 MB.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
STRIPPED_DIRS = frozenset({"__pycache__", "tests"})

LAMBDA_LIMIT_MB = 250.0  # functions plus all their layers, unzipped
DEFAULT_MAX_MB = 200.0
MB = 1024 * 1024


def _name_of(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def stripped_paths(pyproject: Path = PYPROJECT) -> list[str]:
    """Paths under the site folder that the layer leaves out (``strip-paths``)."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return list(config["tool"]["jobworker"]["layer"].get("strip-paths", []))


def remove_paths(site: Path, paths: Iterable[str]) -> None:
    for relative in paths:
        target = site / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def layer_requirements(pyproject: Path = PYPROJECT) -> tuple[list[str], list[str], list[str]]:
    """(installed with dependencies, installed without, jobworker sub-packages left out),
    all read from ``pyproject.toml``: the one list of what the runtime needs."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    layer = config["tool"]["jobworker"]["layer"]
    no_deps = {name.lower() for name in layer["no-deps"]}
    dependencies = config["project"]["dependencies"]
    with_deps = [req for req in dependencies if _name_of(req) not in no_deps]
    without = [req for req in dependencies if _name_of(req) in no_deps]
    return [*with_deps, *layer["extra"]], without, list(layer["exclude-packages"])


def platform_args(arch: str) -> list[str]:
    """pip options that select CPython 3.12 wheels for Linux on ``arch``."""
    machine = MACHINES[arch]
    args = [f"--platform={tag}_{machine}" for tag in MANYLINUX_TAGS]
    return [
        *args,
        f"--python-version={TARGET_PYTHON[0]}.{TARGET_PYTHON[1]}",
        "--implementation=cp",
        f"--abi=cp{TARGET_PYTHON[0]}{TARGET_PYTHON[1]}",
        "--only-binary=:all:",
    ]


def pip_install(site: Path, arch: str, options: Sequence[str]) -> None:
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(site), *platform_args(arch), *options,
    ]
    subprocess.run(command, check=True)


def remove_distributions(site: Path, names: Iterable[str]) -> None:
    """Delete installed distributions (package folder and metadata) from ``site``."""
    for name in names:
        shutil.rmtree(site / name, ignore_errors=True)
        for metadata in site.glob(f"{name}-*.dist-info"):
            shutil.rmtree(metadata)


def strip(root: Path) -> None:
    """Remove byte code caches and test suites: Lambda cannot use the first, nobody the second."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir() and path.name in STRIPPED_DIRS:
            shutil.rmtree(path)
        elif path.suffix == ".pyc" and path.is_file():
            path.unlink()


def copy_package(site: Path, excluded: Sequence[str]) -> None:
    shutil.copytree(
        LAYER_SOURCE / PACKAGE,
        site / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "*.egg-info"),
    )
    for name in excluded:
        shutil.rmtree(site / PACKAGE / name)


def package_modules(site: Path) -> list[str]:
    """Every module of jobworker the layer holds, dotted (what `make layer` lists)."""
    root = site / PACKAGE
    return sorted(
        ".".join((PACKAGE, *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        for path in root.rglob("*.py")
    )


def precompile(site: Path) -> None:
    """Write byte code that never goes stale: /opt is read-only, so Lambda cannot cache it.

    Only meaningful when this script runs on the target Python (the .pyc format is per version).
    """
    if sys.version_info[:2] != TARGET_PYTHON:
        raise SystemExit(
            f"--precompile needs Python {TARGET_PYTHON[0]}.{TARGET_PYTHON[1]} "
            f"(this is {sys.version_info[0]}.{sys.version_info[1]})"
        )
    ok = compileall.compile_dir(
        str(site), quiet=1, workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise SystemExit("compileall failed")


def tree_size(root: Path) -> tuple[int, int]:
    """Bytes and files under ``root`` (what Lambda counts: the unzipped size)."""
    files = [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()]
    return sum(path.stat().st_size for path in files), len(files)


def largest_entries(site: Path, count: int = 8) -> list[tuple[str, int]]:
    sizes = []
    for entry in site.iterdir():
        size = tree_size(entry)[0] if entry.is_dir() else entry.stat().st_size
        sizes.append((entry.name, size))
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:count]


def build(out: Path, arch: str, *, compile_bytecode: bool = False) -> Path:
    """Build the layer into ``out`` (emptied first); returns the ``python`` folder."""
    if out.exists():
        shutil.rmtree(out)
    site = out / "python"
    site.mkdir(parents=True)
    with_deps, without_deps, excluded = layer_requirements()
    pip_install(site, arch, with_deps)
    pip_install(site, arch, ["--no-deps", "--upgrade", *without_deps])
    remove_distributions(site, PROVIDED_BY_RUNTIME)
    remove_paths(site, stripped_paths())
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: no use in a layer
    copy_package(site, excluded)
    strip(site)
    if compile_bytecode:
        precompile(site)
    return site


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "layer",
                        help="output folder, emptied first (default: build/layer)")
    parser.add_argument("--arch", choices=sorted(MACHINES), default="arm64",
                        help="Lambda architecture (default: arm64)")
    parser.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB,
                        help=f"fail above this unzipped size (default: {DEFAULT_MAX_MB:.0f}; "
                             f"Lambda allows {LAMBDA_LIMIT_MB:.0f} for code plus layers)")
    parser.add_argument("--precompile", action="store_true",
                        help="ship .pyc files (faster cold starts); run this script on 3.12")
    return parser.parse_args(argv)


def warn_without_ca_bundle(site: Path) -> bool:
    """Say so when the layer has no RDS CA bundle: the template's functions connect with
    verify-full and would refuse to start (at the migration, late in a deploy)."""
    if (site / CA_BUNDLE).is_file():
        return False
    print(f"warning: no {CA_BUNDLE} in the layer: functions deployed with the template "
          "(DB_SSLMODE=verify-full) will refuse to start; put the RDS bundle there first "
          "(layer/jobworker/aws/certs/README.md)", file=sys.stderr)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if sys.version_info[:2] != TARGET_PYTHON:
        print(f"note: pip evaluates environment markers for Python "
              f"{sys.version_info[0]}.{sys.version_info[1]}, wheels are chosen for "
              f"{TARGET_PYTHON[0]}.{TARGET_PYTHON[1]}", file=sys.stderr)
    try:
        site = build(args.out.resolve(), args.arch, compile_bytecode=args.precompile)
    except subprocess.CalledProcessError as exc:
        print(f"error: pip failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    size, files = tree_size(site)
    print(f"layer ({args.arch}, python{TARGET_PYTHON[0]}.{TARGET_PYTHON[1]}): "
          f"{size / MB:.1f} MB unzipped, {files} files in {site}")
    for name, entry_size in largest_entries(site):
        print(f"  {entry_size / MB:7.1f} MB  {name}")
    modules = package_modules(site)
    print(f"jobworker modules in the layer ({len(modules)}): {', '.join(modules)}")
    warn_without_ca_bundle(site)
    if size > args.max_mb * MB:
        print(f"error: the layer is {size / MB:.1f} MB, over the {args.max_mb:.0f} MB budget "
              f"(Lambda's limit is {LAMBDA_LIMIT_MB:.0f} MB with the function code)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
