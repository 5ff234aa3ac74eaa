"""``/desk``: the desk's home page, the sections an editor may open."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from newsletter.web.desk.frame import Desk


class Home:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        desk.add("/desk", self.page)

    def page(self, request: Request) -> Response:
        return self.desk.render(request, "home.html.j2", "The editor's desk")
