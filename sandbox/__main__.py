"""`python -m sandbox`."""

from __future__ import annotations

import sys

from sandbox.cli import serve

if __name__ == "__main__":
    sys.exit(serve())
