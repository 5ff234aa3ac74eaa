"""Feeds in: fetched concurrently within limits (``collect``, ``bodies``, ``fetching``), parsed
into stories (``parse``), their language (``language``), teasers from article pages
(``articles``). Nothing here touches the store."""
