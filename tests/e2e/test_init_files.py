"""`model-monitor init --systemd DIR` and `init --example PATH|-`: the shipped files, written out.

Run as the installed command (the venv's console script), in a checkout; the wheel's copy
is exercised by tests/e2e/test_packaging.py.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ["model-monitor.service", "model-monitor-check.service", "model-monitor-check.timer"]
BINARY = Path(sys.executable).parent / "model-monitor"


def model_monitor(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not BINARY.is_file():
        pytest.skip(f"{BINARY} is not installed (pip install -e .)")
    return subprocess.run([str(BINARY), *args], cwd=cwd, capture_output=True, text=True, timeout=30)


def test_systemd_writes_the_three_units_as_shipped(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "systemd" / "system"
    done = model_monitor(tmp_path, "init", "--systemd", str(target))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in target.iterdir()) == sorted(UNITS)
    for unit in UNITS:
        written = target / unit
        assert written.read_bytes() == (ROOT / "systemd" / unit).read_bytes()
        assert stat.S_IMODE(written.stat().st_mode) & 0o644 == 0o644  # systemd reads it
        assert f"wrote {written}" in done.stdout
    assert "/etc/model-monitor/credentials" in done.stdout
    assert "daemon-reload" in done.stdout


def test_executable_sets_exec_start_and_nothing_else(tmp_path: Path) -> None:
    binary = "/opt/model-monitor/bin/model-monitor"
    done = model_monitor(tmp_path, "init", "--systemd", "units", "--executable", binary)
    assert done.returncode == 0, done.stderr
    for unit in UNITS:
        shipped = (ROOT / "systemd" / unit).read_text().splitlines()
        written = (tmp_path / "units" / unit).read_text().splitlines()
        changed = [(a, b) for a, b in zip(shipped, written, strict=True) if a != b]
        if unit.endswith(".service"):
            assert len(changed) == 1, changed
            assert changed[0][1].startswith(f"ExecStart={binary} ")
            assert changed[0][0].startswith("ExecStart=/usr/local/bin/model-monitor ")
        else:
            assert not changed


@pytest.mark.parametrize("binary", ["model-monitor", "bin/model-monitor", "/opt/my dir/mm"])
def test_executable_must_be_an_absolute_path_without_spaces(tmp_path: Path, binary: str) -> None:
    done = model_monitor(tmp_path, "init", "--systemd", "units", "--executable", binary)
    assert done.returncode == 78, done.stdout + done.stderr
    assert done.stderr.startswith("error: --executable")
    assert not (tmp_path / "units").exists()


def test_systemd_refuses_to_overwrite_any_unit_and_writes_none(tmp_path: Path) -> None:
    target = tmp_path / "units"
    target.mkdir()
    edited = target / "model-monitor-check.service"
    edited.write_text("# edited by hand\n")
    done = model_monitor(tmp_path, "init", "--systemd", str(target))
    assert done.returncode == 78, done.stdout + done.stderr
    assert f"{edited}: already there; refusing to overwrite" in done.stderr
    assert edited.read_text() == "# edited by hand\n"
    assert [p.name for p in target.iterdir()] == [edited.name]  # nothing else written
    assert len(done.stderr.splitlines()) == 1


def test_systemd_into_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    done = model_monitor(tmp_path, "init", "--systemd", "afile")
    assert done.returncode == 78
    assert "'afile' is a file" in done.stderr


def test_example_prints_or_writes_the_full_commented_example(tmp_path: Path) -> None:
    example = (ROOT / "config.example.toml").read_text()
    printed = model_monitor(tmp_path, "init", "--example", "-")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == example
    assert printed.stderr == ""

    path = tmp_path / "conf" / "config.toml"
    done = model_monitor(tmp_path, "init", "--example", str(path))
    assert done.returncode == 0, done.stderr
    assert path.read_text() == example
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # like init's starter: tokens go in
    assert f"wrote {path}" in done.stdout
    assert f"model-monitor --config {path} config check" in done.stdout


def test_example_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[monitor]\n")
    done = model_monitor(tmp_path, "init", "--example", str(path))
    assert done.returncode == 78
    assert f"{path}: already exists; refusing to overwrite it" in done.stderr
    assert path.read_text() == "[monitor]\n"
    directory = model_monitor(tmp_path, "init", "--example", str(tmp_path))
    assert directory.returncode == 78
    assert "is a directory" in directory.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["starter.toml", "--systemd", "units"],
        ["starter.toml", "--example", "-"],
        ["--systemd", "units", "--example", "-"],
    ],
)
def test_one_thing_at_a_time(tmp_path: Path, args: list[str]) -> None:
    done = model_monitor(tmp_path, "init", *args)
    assert done.returncode == 78, done.stdout + done.stderr
    assert "give one of PATH, --systemd DIR or --example PATH" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_help_names_the_options(tmp_path: Path) -> None:
    done = model_monitor(tmp_path, "init", "--help")
    assert done.returncode == 0
    for option in ("--systemd DIR", "--example PATH|-", "--executable PATH"):
        assert option in done.stdout
