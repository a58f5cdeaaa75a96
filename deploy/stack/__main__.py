"""python -m deploy.stack: see deploy/stack/run.py (`make stack` runs this)."""

import sys

from deploy.stack.run import main

sys.exit(main())
