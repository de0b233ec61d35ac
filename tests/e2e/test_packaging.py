"""What a user installs and runs: the README's commands, the demo, and the wheel's contents."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from datetime import UTC, datetime
from email.parser import HeaderParser
from pathlib import Path

import pytest

import monitor

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DISTRIBUTION = "llm-model-monitor"  # "model-monitor" on PyPI is an unrelated project
UNITS = ["model-monitor.service", "model-monitor-check.service", "model-monitor-check.timer"]
# An install hint naming the old distribution: pip install model-monitor, 'model-monitor[x]', ...
OLD_HINT = re.compile(r"""(pip|pipx|uv pip|uv tool) install\s+(--\S+\s+)*['"]?model-monitor\b""")


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(python3 -m venv .+?)\n```", README)


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    demo, tests = readme_commands()[:2]
    assert demo.endswith("model-monitor demo")
    assert tests.endswith(".venv/bin/pytest")
    assert tests in (ROOT / ".ci" / "run").read_text()  # CI runs exactly the README's command


@pytest.mark.slow
def test_demo_runs_offline_and_shows_what_it_detected() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--fast"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    out = done.stdout
    assert "baseline recorded silently" in out
    assert "+ gpt-5" in out
    assert "- gpt-3.5-turbo" in out
    assert "gpt-4o endpoint types: +openai-response" in out
    assert "team-beta failing" in out and "team-beta recovered" in out
    assert "gpt-5: listed but not callable" in out and "HTTP 503 model_not_found" in out
    assert "gpt-5: callable again" in out
    assert "team-alpha expires in 5 days" in out and "team-alpha has $5.00 of $100.00" in out
    assert "$ gpt-4o input $2.50 -> $5.00, output $10.00 -> $20.00 per 1M tokens (+100%)" in out
    assert "the webhook received 9 request(s)" in out
    assert "sk-demo-" not in out + done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip install .` would install, built once for this module."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel unpacked as site-packages: what an installed user has, without the checkout."""
    folder = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder)
    return folder


def installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line of the unpacked wheel (run from outside the checkout)."""
    return subprocess.run(
        [sys.executable, "-c", "from monitor.cli.commands import main; main()", *args],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_distribution_is_llm_model_monitor_and_the_command_model_monitor() -> None:
    project = PYPROJECT["project"]
    assert project["name"] == DISTRIBUTION
    assert monitor.DISTRIBUTION == DISTRIBUTION
    assert project["scripts"] == {"model-monitor": "monitor.cli.commands:main"}
    assert (ROOT / "monitor" / "__main__.py").is_file()  # python -m monitor
    for key in ("Homepage", "Documentation", "Changelog"):
        assert project["urls"][key].startswith(monitor.HOMEPAGE)


def test_no_install_hint_names_the_unrelated_model_monitor_distribution() -> None:
    texts = [ROOT / "README.md", ROOT / "config.example.toml", ROOT / "CHANGELOG.md"]
    texts += sorted((ROOT / "docs").rglob("*.md"))
    texts += sorted(p for p in (ROOT / "monitor").rglob("*") if p.suffix in (".py", ".toml"))
    wrong = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in texts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if OLD_HINT.search(line)
    ]
    assert not wrong, wrong
    # The hints that are there name the new distribution.
    hints = "".join(
        p.read_text()
        for p in (
            ROOT / "monitor/delivery/apprise.py",
            ROOT / "monitor/store/database.py",
            ROOT / "README.md",
            ROOT / "docs/scale-out.md",
        )
    )
    assert "pip install 'llm-model-monitor[apprise]'" in hints
    assert "pip install 'llm-model-monitor[postgres]'" in hints


def test_the_atom_feed_names_the_distribution_as_its_generator() -> None:
    from xml.etree import ElementTree as ET

    from monitor.web.feed import build_feed
    from monitor.web.timeline import TimelineFilter, TimelineView

    empty = TimelineView(
        filter=TimelineFilter(), entries=(), capped=False, generated_at=datetime.now(UTC)
    )
    root = ET.fromstring(build_feed(empty))  # noqa: S314 - our own feed, under test
    generator = root.find("{http://www.w3.org/2005/Atom}generator")
    assert generator is not None
    assert generator.text == DISTRIBUTION
    assert generator.get("version") == monitor.__version__
    assert generator.get("uri") == monitor.HOMEPAGE


def test_readme_links_work_on_a_package_index_page() -> None:
    """PyPI shows README.md without the repository: every link and image is absolute."""
    inline = re.findall(r"\]\(([^)\s]+)\)", README)
    defined = re.findall(r"^\[[^\]]+\]:\s*(\S+)", README, re.M)
    assert defined, "reference links are defined at the end"
    relative = [url for url in inline + defined if not re.match(r"https?://|mailto:", url)]
    assert not relative, relative
    used = set(re.findall(r"\[([^\]]+)\]\[\]", README)) | set(re.findall(r"\]\[([^\]]+)\]", README))
    labels = set(re.findall(r"^\[([^\]]+)\]:", README, re.M))
    assert used <= labels, used - labels
    for url in defined:
        if url.startswith(monitor.HOMEPAGE + "/blob/main/"):
            assert (ROOT / url.removeprefix(monitor.HOMEPAGE + "/blob/main/")).is_file(), url
        elif url.startswith(monitor.HOMEPAGE + "/tree/main/"):
            assert (ROOT / url.removeprefix(monitor.HOMEPAGE + "/tree/main/")).is_dir(), url


def test_release_files_are_there() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License")
    assert "model-monitor contributors" in license_text
    assert PYPROJECT["project"]["license"] == "MIT"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "keepachangelog.com" in changelog
    assert re.search(r"^## \[Unreleased\]$", changelog, re.M)
    assert DISTRIBUTION in changelog


@pytest.mark.slow
def test_the_wheel_is_llm_model_monitor_with_its_metadata(wheel: Path) -> None:
    assert wheel.name.startswith("llm_model_monitor-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = HeaderParser().parsestr(archive.read(metadata_name).decode())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert metadata["Name"] == DISTRIBUTION
    assert metadata["Version"] == monitor.__version__
    assert "model-monitor = monitor.cli.commands:main" in scripts
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert set(urls) >= {"Homepage", "Documentation", "Changelog"}, urls
    assert metadata.get_all("Classifier")
    assert metadata["Keywords"]


@pytest.mark.slow
def test_the_wheel_holds_everything_the_docs_tell_an_installed_user_to_use(wheel: Path) -> None:
    """Units, example config, migrations, templates and schemas, byte for byte as in the
    repository."""
    shipped = {f"monitor/_data/systemd/{unit}": ROOT / "systemd" / unit for unit in UNITS}
    shipped["monitor/_data/config.example.toml"] = ROOT / "config.example.toml"
    for path in (ROOT / "migrations").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            shipped[f"monitor/_migrations/{path.relative_to(ROOT / 'migrations')}"] = path
    for pattern in (
        "templates/*.j2",
        "schemas/*.json",
        "web/templates/*",
        "web/static/*",
        "config/starter.toml",
    ):
        for path in (ROOT / "monitor").glob(pattern):
            shipped[f"monitor/{path.relative_to(ROOT / 'monitor')}"] = path
    assert len(shipped) > 20
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        missing = sorted(set(shipped) - names)
        assert not missing, missing
        for name, source in shipped.items():
            assert archive.read(name) == source.read_bytes(), name
        # Nothing of the repository's top level lands in site-packages beside the package.
        dist_info = f"llm_model_monitor-{monitor.__version__}.dist-info"
        assert {n.split("/")[0] for n in names} == {"monitor", dist_info}


@pytest.mark.slow
def test_init_from_the_installed_wheel_writes_the_shipped_files(site: Path, tmp_path: Path) -> None:
    units = tmp_path / "units"
    done = installed(site, tmp_path, "init", "--systemd", str(units))
    assert done.returncode == 0, done.stderr
    for unit in UNITS:
        assert (units / unit).read_text() == (ROOT / "systemd" / unit).read_text(), unit
        assert f"wrote {units / unit}" in done.stdout
    example = installed(site, tmp_path, "init", "--example", "-")
    assert example.returncode == 0, example.stderr
    assert example.stdout == (ROOT / "config.example.toml").read_text()
    located = subprocess.run(
        [
            sys.executable,
            "-c",
            "from monitor.cli.shipped import shipped_path as p; "
            "print(p('systemd/model-monitor.service')); print(p('config.example.toml'))",
        ],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert located == [
        str(site / "monitor/_data/systemd/model-monitor.service"),
        str(site / "monitor/_data/config.example.toml"),
    ]


@pytest.mark.slow
def test_the_wheel_ships_migrations_and_db_upgrade_works_from_it(
    wheel: Path, site: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "monitor/_migrations/env.py" in names
        assert any(n.startswith("monitor/_migrations/versions/0001") for n in names)
        assert "monitor/schemas/event-v1.json" in names
        assert "monitor/config/starter.toml" in names
        assert "monitor/templates/event.txt.j2" in names
    database = tmp_path / "fresh.db"
    done = installed(site, tmp_path, "--database", f"sqlite:///{database}", "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert re.search(r"schema at \d{4}", done.stdout), done.stdout
    assert (
        str(site / "monitor" / "_migrations")
        in subprocess.run(
            [
                sys.executable,
                "-c",
                "from monitor.store.database import migrations_dir; print(migrations_dir())",
            ],
            env={**os.environ, "PYTHONPATH": str(site)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
