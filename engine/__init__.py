"""The engine: rule loading, the scoring core, the Faust worker, alert lifecycle, CLI."""
