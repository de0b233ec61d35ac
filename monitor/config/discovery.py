"""Where the config file and the default database live.

The lookup follows systemd's and XDG's conventions so the same binary works as a
DynamicUser service, from a user's crontab and from a terminal without flags. Nothing
here creates directories or touches the database: callers decide when to write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from monitor.config.model import ConfigError

APP = "model-monitor"
CONFIG_NAME = "config.toml"
DATABASE_NAME = "monitor.db"
SYSTEM_CONFIG = Path("/etc") / APP / CONFIG_NAME


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _first_dir(value: str | None) -> Path | None:
    """systemd joins several directories with ':' (e.g. ConfigurationDirectory=a b)."""
    dirs = [d for d in (value or "").split(":") if d]
    return Path(dirs[0]) if dirs else None


def _home(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    return Path(home) if home else Path.home()


def _xdg_dir(environ: Mapping[str, str], var: str, fallback: str) -> Path:
    """The XDG base directory spec: unset, empty or relative values mean the default."""
    value = environ.get(var, "")
    if value and Path(value).is_absolute():
        return Path(value)
    return _home(environ) / fallback


def config_candidates(
    cli_path: str | None, environ: Mapping[str, str] | None = None
) -> list[tuple[str, Path]]:
    """Every place find_config would look, in order, each with the reason it is looked at."""
    environ = _env(environ)
    places: list[tuple[str, Path]] = []
    if cli_path:
        places.append(("--config", Path(cli_path).expanduser()))
    if environ.get("MODEL_MONITOR_CONFIG"):
        places.append(("$MODEL_MONITOR_CONFIG", Path(environ["MODEL_MONITOR_CONFIG"]).expanduser()))
    for directory in (environ.get("CONFIGURATION_DIRECTORY") or "").split(":"):
        if directory:
            places.append(("$CONFIGURATION_DIRECTORY", Path(directory) / CONFIG_NAME))
    xdg = _xdg_dir(environ, "XDG_CONFIG_HOME", ".config") / APP / CONFIG_NAME
    places.append(("$XDG_CONFIG_HOME", xdg))
    places.append(("system", SYSTEM_CONFIG))
    return places


def find_config(cli_path: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The config file to load.

    An explicit choice (`--config` or `$MODEL_MONITOR_CONFIG`) is returned even when the
    file is missing, so load_config reports that exact path instead of silently falling
    back to another file. The implicit places are used only if they exist.
    """
    places = config_candidates(cli_path, environ)
    for why, path in places:
        if why in ("--config", "$MODEL_MONITOR_CONFIG") or path.is_file():
            return path
    looked = ", ".join(f"{path} ({why})" for why, path in places)
    raise ConfigError(
        [
            f"no config file found; looked in: {looked}. Create one with `{APP} init` "
            f"(writes {default_config_path(environ)}) or pass --config PATH"
        ]
    )


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where `init` writes when given no path: the file find_config would pick up next time."""
    environ = _env(environ)
    if environ.get("MODEL_MONITOR_CONFIG"):
        return Path(environ["MODEL_MONITOR_CONFIG"]).expanduser()
    return _xdg_dir(environ, "XDG_CONFIG_HOME", ".config") / APP / CONFIG_NAME


def default_database_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$STATE_DIRECTORY/monitor.db` under systemd, else the XDG state directory."""
    environ = _env(environ)
    state = _first_dir(environ.get("STATE_DIRECTORY"))
    if state is None:
        state = _xdg_dir(environ, "XDG_STATE_HOME", ".local/state") / APP
    return state.absolute() / DATABASE_NAME


def default_database_url(environ: Mapping[str, str] | None = None) -> str:
    """The SQLAlchemy URL used when neither --database nor [monitor].database is set.

    The path is absolute, so the URL has four slashes (`sqlite:////var/lib/...`). The
    directory is not created here; commands that write (`check`, `run`, `db upgrade`)
    create it, commands that only read never do.
    """
    return f"sqlite:///{default_database_path(environ)}"


class WriteRefused(ConfigError):
    """`init` will not or cannot write its file: one plain sentence naming the path and
    what to do (exit 78), not a list of problems with a configuration."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


def starter_config() -> str:
    """The commented starter config that `init` writes (shipped as package data)."""
    return resources.files("monitor.config").joinpath("starter.toml").read_text("utf-8")


def write_starter_config(path: Path) -> None:
    """Write the starter config, refusing to overwrite anything.

    The file is created owner-only (0600) because operators may paste a token into it.
    """
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        if Path(exc.filename or path) == path:
            raise WriteRefused(
                f"{path} already exists; not overwriting it (remove it or give another path)"
            ) from None
        raise WriteRefused(
            f"{path}: cannot create it: {exc.filename} is a file, not a directory; "
            "give another path"
        ) from None
    except OSError as exc:
        raise WriteRefused(f"{path}: cannot create it: {_reason(exc)}; give another path") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(starter_config())
    except OSError as exc:
        path.unlink(missing_ok=True)  # never leave half a starter behind
        raise WriteRefused(f"{path}: cannot write it: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    """ "No such file or directory (/proc/x)": the OS's words and the path they are about."""
    reason = exc.strerror or type(exc).__name__
    return f"{reason} ({exc.filename})" if exc.filename else reason
