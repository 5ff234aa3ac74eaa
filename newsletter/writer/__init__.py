"""The optional writer: the brief's summaries and a two-line intro written by a language model
from the outlets' own text only, each checked against that text before it is used.

``prompt`` (what is asked, and the cache key; pure), ``grounding`` (the check: every number and
name in the sources; pure), ``endpoint`` (an OpenAI-compatible endpoint through the ``openai``
client, within a time limit). ``flows.write`` puts them together with the store's cache.
"""
