"""One module per department: its entities, background streams and injected incidents."""
