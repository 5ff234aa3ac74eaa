"""newsletter: a daily industry-insights email built from RSS/Atom feeds, grouped by sector."""

__version__ = "0.1.0"
