import sys

from ladder_jobs.cli import main

sys.exit(main())
