"""The built-in templates (Jinja, MJML). Installed as ``newsletter.templates``; a publisher's
own folder (``templates:`` in the config) overrides them file by file."""
