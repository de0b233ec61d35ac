"""model-monitor: watch what every LLM gateway token may use, and say exactly what changed."""

__version__ = "0.1.0"
