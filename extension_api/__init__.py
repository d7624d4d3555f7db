"""The HTTP adapter: the extension API, tracking endpoints and pages."""
