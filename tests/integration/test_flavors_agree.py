"""One set of models, served at once in four wire formats: every flavor must report the same
additions and removals, with nothing extra."""

from __future__ import annotations

from contextlib import ExitStack

from monitor.config import Config, MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.store.database import open_database

FLAVORS = ("new-api", "anthropic", "gemini", "openrouter")
TOKEN = "sk-same-models-everywhere-000000"


def catalogue(ids: list[str]) -> list[dict]:
    return [
        make_model(
            i,
            ("openai",),
            display_name=i.upper(),
            context_window=128000,
            max_output_tokens=8192,
            generation_methods=["generateContent"],
        )
        for i in ids
    ]


def test_the_same_changes_through_every_flavor(db_url: str) -> None:
    ids = [f"model-{i:02d}" for i in range(12)]
    with ExitStack() as stack:
        sims = {f: stack.enter_context(GatewaySimulator(flavor=f, seed=7)) for f in FLAVORS}
        for sim in sims.values():
            sim.set_group("default", catalogue(ids))
            sim.add_token(TOKEN, group="default")
        config = Config(
            path=None,
            monitor=MonitorSettings(timeout=5.0, refetch_delay=0.0),
            sources=tuple(SourceConfig(f, sims[f].base_url, flavor=f) for f in FLAVORS),
            tokens=tuple(TokenConfig(f"{f}-token", f, Secret(TOKEN)) for f in FLAVORS),
            channels=(),
        )
        db = open_database(db_url)
        checker = Checker(config, db)
        reports = checker.check()
        assert [r.tokens[0].baseline for r in reports] == [True] * 4
        assert [r.tokens[0].model_count for r in reports] == [12] * 4

        new_ids = [*ids[1:], "model-new-a", "model-new-b"]
        for sim in sims.values():
            sim.set_group("default", catalogue(new_ids))
        seen: dict[str, set[tuple[str, str]]] = {f: set() for f in FLAVORS}
        for _ in range(3):  # additions at once, the removal after the flap guard
            for report in checker.check():
                for token in report.tokens:
                    assert token.error is None, token.error
                    seen[report.source] |= {(str(c.type), c.model) for c in token.changes}
        db.close()

    expected = {("added", "model-new-a"), ("added", "model-new-b"), ("removed", "model-00")}
    assert seen == {f: expected for f in FLAVORS}
