"""How `models` lays out what each flavor knows about a model."""

from __future__ import annotations

from monitor.cli.output import model_table
from monitor.core.records import ModelRecord


def test_priced_models_get_context_and_price_columns() -> None:
    models = [
        (
            "t",
            ModelRecord.build(
                "a/claude",
                None,
                {
                    "context_window": 200000,
                    "pricing.prompt": "0.000003",
                    "pricing.completion": "0.000015",
                    "display_name": "Claude",
                },
            ),
        ),
        ("t", ModelRecord.build("gpt-5", None, {"pricing.prompt": "0.00000125"})),
    ]
    headers, rows = model_table(models)
    assert headers == ["token", "model", "context", "$/M in", "$/M out", "other fields"]
    assert rows[0] == ["t", "a/claude", 200000, "3", "15", "display_name=Claude"]
    assert rows[1] == ["t", "gpt-5", None, "1.25", None, None]


def test_gateway_models_show_endpoint_types_only() -> None:
    headers, rows = model_table([("t", ModelRecord.build("gpt-4o", ["openai", "embeddings"]))])
    assert headers == ["token", "model", "endpoint types", "other fields"]
    assert rows == [["t", "gpt-4o", ["embeddings", "openai"], None]]
