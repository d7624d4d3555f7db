"""Prometheus counters shared by the adapters (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

SMTP_REPLIES = Counter("inboxlog_smtp_data_replies", "Replies to SMTP DATA, by code", ["code"])
INGESTED = Counter("inboxlog_ingested_messages", "Messages through the pipeline, by outcome",
                   ["outcome", "source"])
TRACKING_HITS = Counter("inboxlog_tracking_hits", "Pixel and link requests received", ["kind"])
