"""An app whose ``handlers`` module the broadcaster imports at start-up (see test_apps)."""
