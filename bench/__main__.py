"""``python -m jobworker.dev.bench SCENARIO [options]``: the same as ``jobworker bench``."""

import sys

from . import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
