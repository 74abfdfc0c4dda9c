"""The worker's settings: the one place their defaults are written (``yujing worker`` takes its
option defaults from here)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from topics.registry import DEFAULT_PARTITIONS

REPARTITION_SUFFIX = "repartition"
STATE_TABLE = "state"
END_OFFSETS_INTERVAL_S = 10.0
"""How often the worker asks the broker for the end offsets of the partitions it reads (the
partition watch's measure of records waiting; aiokafka's own figure stops with its fetches)."""
COMMIT_STILL_S = 30.0
"""A partition whose committed offset has not moved for this long while events past it were
handed on is read again from the committed offset (commits run every few seconds)."""

STREAM_BUFFER = 65536
"""Faust's default is 4096: on a backlog a larger buffer scores more events a second at the
same latency (``bench/README.md``); at a steady rate it stays nearly empty."""


class WorkerSettings(BaseModel):
    bootstrap: str = "127.0.0.1:9092"
    rules: list[Path] = [Path("rules")]
    app_id: str = "yujing"
    """The consumer group, and the prefix of the worker's internal topics."""
    partitions: int = DEFAULT_PARTITIONS
    batch_max: int = 1000
    """Most events scored as one batch."""
    batch_within_s: float = 0.05
    """The longest a batch waits to go: normally it goes as soon as the fetched events are in
    (``faust_internals.batching``), this bounds one that missed that moment."""
    producer_linger_s: float = 0.01
    session_timeout_s: float = 10.0
    tick_interval_s: float = 1.0
    reload_interval_s: float = 5.0
    """How often rule files are checked for changes (0: never)."""
    reload_timeout_s: float = 60.0
    """How long loading changed rule files may take (in a child process, then here)."""
    sweep_interval_s: float = 300.0
    """How often idle state is dropped."""
    deadline_lateness_s: float = 2.0
    """Deadlines fire this long after they pass, so events in flight can still cancel them."""
    commit_interval_s: float = 2.8
    """How often offsets are committed, each commit writing the dirty state first (Faust's
    default): shorter means smaller state writes (the loop scores nothing while one runs) but
    more of them."""
    rekey_here: bool = True
    """Score here an event re-keyed to a key whose re-keying partition this worker reads, rather
    than send it through the re-keying topic and read it back (off: every re-keyed event takes
    the topic, as with several workers it does for the keys other workers own)."""
    fetch_busy_above: float = 0.0
    """Events/s above which the broker may hold a fetch to gather records (``FetchPacing``);
    0, the default, keeps Faust's fetches (each returns at its first record): pacing spares the
    broker but costs throughput on a backlog and median latency (``bench/README.md``)."""
    fetch_busy_min_bytes: int = 32768
    fetch_busy_wait_s: float = 0.01
    stream_buffer: int = STREAM_BUFFER
    """Events fetched and not yet scored that a stream holds (Faust's
    ``stream_buffer_maxsize``). When it is full Faust pauses the partition's fetches and hands
    each further message on through a task of its own: on a backlog that churn, not the
    scoring, sets the pace."""
    state_flush_interval_s: float = 10.0
    """While no offset commit has flushed state for this long (no events flowing), the timer
    writes dirty state (changes made by the clock alone) to the changelog."""
    max_future_s: float = 600.0
    """Events dated further ahead of the wall clock are dead-lettered (``topics.codec``)."""
    max_event_age_s: float = 7 * 86400.0
    """Events dated further back are dead-lettered: older than any rule's state lasts."""
    metrics_port: int = 9464
    """Prometheus /metrics port (0: off)."""
    metrics_host: str = "127.0.0.1"
    """The address /metrics, /healthz and /readyz listen on."""
    data_dir: Path = Path(".yujing/worker")

    @property
    def repartition_topic(self) -> str:
        """Named after the app, like Faust's own internal topics, so two deployments on one
        cluster never read each other's re-keyed events."""
        return f"{self.app_id}-{REPARTITION_SUFFIX}"


DEFAULTS = WorkerSettings()
"""The defaults, for the command line's options."""


class NoRulesError(RuntimeError):
    """A worker with no rule in force would consume and commit every event unscored."""

