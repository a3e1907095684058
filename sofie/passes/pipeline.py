"""The default optimization pipeline of sofie-compile and sofie.compile."""

DEFAULT_PIPELINE = ["plan-memory"]
