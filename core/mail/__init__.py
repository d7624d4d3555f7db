"""Pure mail code: parsing, MIME, forwards, quotes, bulk mail, threading rules.

Nothing here touches a database: these modules take bytes or parsed messages and
return values. `tests/core/mail/test_purity.py` holds the line.
"""
