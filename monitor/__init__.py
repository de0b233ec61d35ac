"""model-monitor: watch what every LLM gateway token may use, and say exactly what changed."""

__version__ = "0.1.0"

# The name on PyPI (model-monitor there is an unrelated project): in install hints, the
# User-Agent and the feed's generator. The command stays model-monitor.
DISTRIBUTION = "llm-model-monitor"
HOMEPAGE = "https://github.com/llm-model-monitor/llm-model-monitor"
