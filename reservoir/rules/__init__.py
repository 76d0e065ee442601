"""Learning rules: each rule is one module with its state, per-step kernel and config."""
