"""Rule files: their format, reading them safely, loading them into models, and reloading
them while the engine runs."""
