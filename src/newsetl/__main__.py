"""`python -m newsetl ...`: the `newsetl` command, as `python -X importtime -m newsetl --help`
profiles its start (bench/startup.py)."""

import sys

from .cli import main

sys.exit(main())
