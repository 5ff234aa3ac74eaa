"""A reader's life cycle: sign-up, confirmation, preferences, unsubscribe, erasure
(``subscriptions``), the list as CSV (``roster``, ``csvlines``), and the links each reader
gets (``links``)."""
