"""Finding the Lambda runtime's Python (3.12) on this machine: PATH first, then pyenv."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

LAMBDA_PYTHON = (3, 12)


def _answers(candidate: str) -> bool:
    """pyenv's shims exist on PATH but refuse to run until a version is selected."""
    try:
        done = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == str(LAMBDA_PYTHON)


def find_lambda_python() -> str | None:
    version = ".".join(map(str, LAMBDA_PYTHON))
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(str(path) for path in
                         Path(pyenv_root).glob(f"versions/{version}.*/bin/python{version}"))
    return next((c for c in candidates if c and _answers(c)), None)


def require_lambda_python() -> str:
    """The interpreter, or a skip (a failure under CI, which must run these tests)."""
    found = find_lambda_python()
    if found is None:
        reason = "no Python 3.12 here (the Lambda runtime's); install it, e.g. with pyenv"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found
