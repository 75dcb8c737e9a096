"""``python -m livehub.loadtest``."""

import sys

from livehub.loadtest.cli import main

if __name__ == "__main__":
    sys.exit(main())
