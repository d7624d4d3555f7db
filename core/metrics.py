"""Prometheus counters shared by the adapters (served at ``/metrics``).

One process keeps its counts in memory. Under ``serve --workers N`` the supervisor calls
:func:`share_across_processes` before it forks: from then on every process (the
supervisor's own migrations, each worker, a restarted one) writes its counts to its own
file in one directory (prometheus_client's multiprocess mode), and :func:`exposition`,
whichever worker answers ``/metrics``, sums every file there, including those of
workers that have since died, so counters never go back.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics import MetricWrapperBase

__all__ = ["CONTENT_TYPE_LATEST", "INGESTED", "SMTP_REPLIES", "TRACKING_HITS",
           "TRACKING_HITS_DROPPED", "exposition", "process_ended", "share_across_processes"]

# Counted by the SMTP server as it answers DATA (``smtp_ingest.server``).
SMTP_REPLIES = Counter("inboxlog_smtp_data_replies", "Replies to SMTP DATA, by code", ["code"])
# Counted by ``pipeline.log_message``, once per portal a message was for: ``outcome`` is
# an ``IngestOutcome`` or ``refused``; ``source`` how it came as routed (``Source``), or
# for a refusal the entry point (``Channel``).
INGESTED = Counter("inboxlog_ingested_messages", "Messages through the pipeline, by outcome",
                   ["outcome", "source"])
TRACKING_HITS = Counter("inboxlog_tracking_hits", "Pixel and link requests received", ["kind"])
# Hits answered but never recorded: over the recorder's pending caps (extension_api.live).
# Every metric here has labels: a value is made at first use, not at import, where
# with PROMETHEUS_MULTIPROC_DIR set its file would be opened before serve made the
# directory (and a child kept from import would count outside the shared files).
TRACKING_HITS_DROPPED = Counter("inboxlog_tracking_hits_dropped",
                                "Tracking hits dropped while too many waited to be recorded",
                                ["kind"])

_ENV = "PROMETHEUS_MULTIPROC_DIR"
_shared: Path | None = None


def share_across_processes(directory: Path) -> None:
    """Keep this process's counts, and those of every process forked from it, in
    ``directory`` (emptied of earlier counts first: a directory is one server's run).

    prometheus_client picks in-memory or file-backed values when a value is made, so
    the labelled counters' existing children (in-memory) are dropped here and made
    again, file-backed, at their next use; an unlabelled one gets a new value."""
    global _shared
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.db"):
        old.unlink()
    os.environ[_ENV] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    # The registry has no public list of its collectors.
    for collector in list(REGISTRY._collector_to_names):
        if isinstance(collector, MetricWrapperBase):
            if collector._labelnames:
                collector.clear()
            else:
                collector._metric_init()  # type: ignore[no-untyped-call]
    _shared = directory


def process_ended(pid: int) -> None:
    """A worker ``pid`` is gone: its live gauges no longer count (its counters do)."""
    if _shared is not None:
        multiprocess.mark_process_dead(pid, str(_shared))  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """The text ``/metrics`` answers: this process's counters, or with
    :func:`share_across_processes` (or ``PROMETHEUS_MULTIPROC_DIR`` set at start) the
    sums over every process of the server."""
    directory = _shared or os.environ.get(_ENV)
    if not directory:
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)
