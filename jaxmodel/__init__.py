"""gollm: a small LLaMA-3-style model stack. JAX trains; see README.md and spec/."""
