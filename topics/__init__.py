"""Topic names and event schemas: what flows into yujing and what it publishes."""
