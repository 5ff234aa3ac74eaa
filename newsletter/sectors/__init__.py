"""Stories → ranked sectors: the editable rules (``rules``), the publication's own model
(``model``), both together (``judge``), and the rules scored on a labelled file (``evaluate``).
Pure: nothing here touches the store."""
