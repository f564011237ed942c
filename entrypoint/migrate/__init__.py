"""The migrate step: plan, the cross-process lock and its backends, apply (step ties them)."""
