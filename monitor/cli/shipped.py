"""Files the package ships for installing the service: the systemd units and the example config.

In a wheel they live in `monitor/_data/` (pyproject force-includes the repository's top-level
`systemd/` and `config.example.toml` there); in a checkout they are read from the repository
root, as the migrations are. `model-monitor init --systemd DIR` and `init --example PATH`
write them out, so an installed user never needs the source tree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import monitor

UNITS = ("model-monitor.service", "model-monitor-check.service", "model-monitor-check.timer")
SHIPPED_EXECUTABLE = "/usr/local/bin/model-monitor"  # what ExecStart= names in the units
EXAMPLE_CONFIG = "config.example.toml"


class InstallError(Exception):
    """A file could not be written; the message names it and what to do."""


def shipped_path(relative: str) -> Path:
    """A shipped file: inside the package when installed, at the repo root when developing."""
    package = Path(monitor.__file__).parent
    for base in (package / "_data", package.parent):
        candidate = base / relative
        if candidate.is_file():
            return candidate
    raise InstallError(
        f"{relative} is not installed next to {package}; reinstall model-monitor "
        "(pip install --force-reinstall llm-model-monitor)"
    )


def unit_text(name: str, executable: str = SHIPPED_EXECUTABLE) -> str:
    """A unit as shipped, its ExecStart= pointing at `executable`."""
    text = shipped_path(f"systemd/{name}").read_text("utf-8")
    if executable == SHIPPED_EXECUTABLE:
        return text
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("ExecStart="):
            lines[i] = line.replace(SHIPPED_EXECUTABLE, executable, 1)
    return "".join(lines)


def example_config() -> str:
    return shipped_path(EXAMPLE_CONFIG).read_text("utf-8")


def write_units(directory: Path, executable: str = SHIPPED_EXECUTABLE) -> list[Path]:
    """Write every unit into `directory`; refuses (writing nothing) if any of them exists."""
    if not executable.startswith("/"):
        raise InstallError(
            f"--executable {executable}: systemd needs an absolute path, e.g. {SHIPPED_EXECUTABLE}"
        )
    if any(c.isspace() for c in executable):
        raise InstallError(f"--executable {executable!r}: choose a path without spaces")
    texts = {name: unit_text(name, executable) for name in UNITS}
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise InstallError(f"{directory} is not a directory; choose a directory for the units")
    existing = [directory / name for name in UNITS if (directory / name).exists()]
    if existing:
        raise InstallError(
            f"{', '.join(map(str, existing))}: already there; refusing to overwrite any "
            "unit. Remove what is there first, or write into another directory and compare"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"{directory}: cannot create it: {_reason(exc)}") from None
    written: list[Path] = []
    for name, text in texts.items():
        path = directory / name
        try:
            _create(path, text, 0o644)
        except FileExistsError:
            _remove(written)
            raise InstallError(f"{path}: appeared while writing; refusing to overwrite") from None
        except OSError as exc:
            _remove(written)
            raise InstallError(f"{path}: cannot write it: {_reason(exc)}") from None
        written.append(path)
    return written


def write_example(target: str) -> Path | None:
    """Write the full commented example config to `target` ("-": standard output)."""
    text = example_config()
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    path = Path(target).expanduser()
    if path.is_dir():
        raise InstallError(f"{path} is a directory; give a file name, e.g. {path}/config.toml")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only, like `init`'s starter: a token may be pasted into it.
        _create(path, text, 0o600)
    except FileExistsError:
        raise InstallError(
            f"{path}: already exists; refusing to overwrite it. Choose another path, or "
            "`model-monitor init --example -` to read the example"
        ) from None
    except OSError as exc:
        raise InstallError(f"{path}: cannot write it: {_reason(exc)}") from None
    return path


def _create(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError:
        path.unlink(missing_ok=True)  # never leave half a file behind
        raise


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _reason(exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    return f"{reason} ({exc.filename})" if exc.filename else reason
