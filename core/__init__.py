"""inboxlog core: domain model, storage and the ingest pipeline.

`core` imports none of the adapters (`smtp_ingest`, `extension_api`, `inbox_sync`);
they call into it and translate its answers and `CoreError`s into SMTP or HTTP.
"""
