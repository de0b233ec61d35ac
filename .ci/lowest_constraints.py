"""Print pip constraints pinning every runtime dependency to the lowest version pyproject allows.

CI installs the package with these and runs the end-to-end tests, so a floor that is too
low (an API the code uses but the floor lacks) fails the build instead of a user.
"""

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml").read_text())
for requirement in project["project"]["dependencies"]:
    match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)", requirement)
    if not match:
        sys.exit(f"no lower bound to test in {requirement!r}: give every dependency one")
    print(f"{match.group(1)}=={match.group(3)}")
