"""What search, spaces and gic_models share: plain types and settings. Imports no torch, nothing else of ours."""
