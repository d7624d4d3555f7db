"""Storage plumbing: engines and transactions, models, migrations, the blob stores.

Domain modules in `core` use these; nothing here knows about contacts, threads or
routing rules.
"""
