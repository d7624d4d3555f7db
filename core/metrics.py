"""Prometheus counters shared by the adapters (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

# Counted by the SMTP server as it answers DATA (``smtp_ingest.server``).
SMTP_REPLIES = Counter("inboxlog_smtp_data_replies", "Replies to SMTP DATA, by code", ["code"])
# Counted by ``pipeline.log_message``, once per portal a message was for: ``outcome`` is
# an ``IngestOutcome`` or ``refused``; ``source`` how it came as routed (``Source``), or
# for a refusal the entry point (``Channel``).
INGESTED = Counter("inboxlog_ingested_messages", "Messages through the pipeline, by outcome",
                   ["outcome", "source"])
TRACKING_HITS = Counter("inboxlog_tracking_hits", "Pixel and link requests received", ["kind"])
