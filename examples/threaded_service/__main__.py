"""``python -m threaded_service``."""
import sys

from .service import main

sys.exit(main())
