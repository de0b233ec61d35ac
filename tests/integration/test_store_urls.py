"""Judging and showing a database URL costs no SQLAlchemy import: checked in a fresh
interpreter, where nothing else has imported it yet."""

from __future__ import annotations

import subprocess
import sys


def test_checking_a_url_does_not_load_sqlalchemy() -> None:
    code = (
        "import sys; from monitor.store.urls import url_problem, shown_url;"
        "url_problem('sqlite:////tmp/x.db'); shown_url('postgresql+psycopg://a:b@h/d');"
        "print('sqlalchemy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
