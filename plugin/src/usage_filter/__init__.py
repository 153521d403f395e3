"""gpustack-token-usage filter: latency statistics injected into OpenAI-compatible responses."""
