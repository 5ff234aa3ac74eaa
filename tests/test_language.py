from __future__ import annotations

from newsletter.ingest.language import allowed, detect, primary_subtag


def test_a_clear_text_decides_whatever_the_feed_declares() -> None:
    german = "Benzin und Diesel teurer: Rekordanstieg der Spritpreise am Mittag"
    assert detect(german, "Das Tanken wird für Autofahrer wieder teurer.", "en") == "de"
    portuguese = "Drones ucranianos matam pelo menos dez pessoas e atingem armazém"
    assert detect(portuguese, "", "") == "pt"
    assert detect("Refiners cut runs as margins shrink across Asia", "", "") == "en"


def test_a_short_or_unsure_text_takes_the_feeds_declared_language() -> None:
    assert detect("Dodgers put CF Pages on IL", "", "en-US") == "en"
    assert detect("OK", "", "") == ""  # too short, nothing declared: unknown, and kept
    assert allowed("", frozenset({"en"}))
    assert not allowed("de", frozenset({"en"}))


def test_language_tags_reduce_to_their_primary_subtag() -> None:
    assert primary_subtag("en-GB") == "en"
    assert primary_subtag("pt_BR") == "pt"
    assert primary_subtag("") == "" and primary_subtag("12") == ""
