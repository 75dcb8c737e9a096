"""``python -m livehub_loadtest``."""

import sys

from livehub_loadtest.cli import main

if __name__ == "__main__":
    sys.exit(main())
