"""Build the Lambda layer for python3.12 without Docker, and check that it fits.

pip downloads ready-made Linux wheels for the target platform (no compiler, no container):
``layer/requirements.txt`` with its dependencies, then ``layer/requirements-nodeps.txt``
without theirs (PyVRP: its plotting dependencies stay out). The ``jobworker`` package is
copied next to them. The result is ``<out>/python/...``, the layout Lambda puts on
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
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER_SOURCE = ROOT / "layer"
PACKAGE = "jobworker"
REQUIREMENTS = LAYER_SOURCE / "requirements.txt"
REQUIREMENTS_NO_DEPS = LAYER_SOURCE / "requirements-nodeps.txt"

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


def copy_package(site: Path) -> None:
    shutil.copytree(
        LAYER_SOURCE / PACKAGE,
        site / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "*.egg-info"),
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
    pip_install(site, arch, ["-r", str(REQUIREMENTS)])
    pip_install(site, arch, ["--no-deps", "--upgrade", "-r", str(REQUIREMENTS_NO_DEPS)])
    remove_distributions(site, PROVIDED_BY_RUNTIME)
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: no use in a layer
    copy_package(site)
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
    if size > args.max_mb * MB:
        print(f"error: the layer is {size / MB:.1f} MB, over the {args.max_mb:.0f} MB budget "
              f"(Lambda's limit is {LAMBDA_LIMIT_MB:.0f} MB with the function code)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
