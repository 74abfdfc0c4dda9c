"""Every place the worker reaches into faust-streaming, mode-streaming or aiokafka below their
public API, so that an upgrade has one package to review (and ``versions.check_versions``
refuses to start on versions these were not written for):

- ``batching``: ``take_ready``, Faust's ``take_events`` yielding as soon as the fetched events
  are in (a stream's private processors and generators);
- ``fetch_drain``: Faust's fetch loop (``Consumer._drain_messages``) replaced, delivering
  messages inline;
- ``fetch_order``: the consumer's ``getmany`` wrapped to keep each partition in offset order
  (Faust's read offsets), and seeks in the consumer's thread;
- ``fetch_pacing``: the aiokafka fetcher's ``fetch_min_bytes`` / ``fetch_max_wait_ms`` set
  while it runs;
- ``commit``: Faust's ``Consumer._commit_offsets`` wrapped so a commit waits for the state and
  outputs of its events, and the worker's ``Monitor``;
- ``producer``: Faust's aiokafka producer asking for idempotence outside transactions too;
- ``consumer``: what the partition watch reads of the consumers' bookkeeping, and a stalled
  partition put back among the fetched ones.

Nothing is imported here, so the version check runs before any of them is.
"""
