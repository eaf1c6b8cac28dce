"""The driver script of a Dataproc batch: the `finelake` command line that scripts/dataproc_submit.sh passes."""

import sys

from jobs.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
