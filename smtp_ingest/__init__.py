"""The SMTP adapter: receives what users BCC or forward to their logging address."""
