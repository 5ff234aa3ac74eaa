"""Why a stored story has its sectors: the rules' own account of it (``stories --explain``)."""

from __future__ import annotations

from newsletter.config import Config
from newsletter.errors import StoryNotFound
from newsletter.models import Story
from newsletter.sectors.judge import make_classifier
from newsletter.sectors.rules import Verdict
from newsletter.store import Store


def explain_story(config: Config, store: Store, story_id: str) -> tuple[Story, Verdict]:
    """A stored story and why the rules give it its sectors, or ``StoryNotFound``."""
    story = store.stories.story(story_id)
    if story is None:
        raise StoryNotFound(
            f"no stored story has the id {story_id!r}",
            hint='A story\'s id is under its time in `newsletter stories`, and its "id" in '
            "`newsletter stories --json`.",
        )
    hints = {feed.url: feed.sector for feed in config.feeds}
    verdict = make_classifier(config).explain(
        story.title, story.summary, hints.get(story.feed_url), story.url
    )
    return story, verdict
