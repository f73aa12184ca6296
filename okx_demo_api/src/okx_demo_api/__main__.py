"""``python -m okx_demo_api``: run the reference target (flags mirror env vars)."""
from __future__ import annotations

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
