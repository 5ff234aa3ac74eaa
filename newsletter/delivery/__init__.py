"""The edition out to every reader once: the ledger's guarantee (``deliver``, ``sending``,
``journal``), the variants (``variants``), the mailers (``mailers``), transactional mail's queue
(``outgoing``), what providers report back (``events``), per-edition figures (``stats``) and
the checks before a real send (``preflight``)."""
