"""Stories → the edition and its email: the same event grouped (``cluster``), ranked and laid
out per reader (``digest``), rendered MJML/HTML/text once per variant (``render``, ``filters``),
each reader's values filled only at the template's own markers (``personalize``), the Atom feeds
(``syndication``). Pure: nothing here touches the store."""
