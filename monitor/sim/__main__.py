"""`python -m monitor.sim`: the same as `model-monitor sim`."""

import sys

from monitor.cli.commands import main

main(["sim", *sys.argv[1:]])
