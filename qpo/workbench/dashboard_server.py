"""The dashboard's server: Voila with the book's login (:mod:`qpo.workbench.auth`).

``python -m qpo.workbench.dashboard_server NOTEBOOK [voila options]`` is what ``qpo dashboard``
runs: Voila's own application with the identity provider of the client book, the hook that tells
each visit's kernel who signed in, and the notebook folder's files served only to a signed-in
person (Voila serves them without asking by default).

It also serves plotly's widget bundle (:mod:`qpo.workbench.figure_widgets`) once, at
``/qpo/static/plotly-widget-<plotly version>.js``, to a signed-in person only (else 403), with
headers that let the browser keep it for good (a new plotly is a new address): the figures of a
visit's kernel name that address instead of carrying the 5 MB bundle each through the websocket.
"""
from __future__ import annotations

import functools
import hashlib
import sys

#: the route of plotly's widget bundle (its version in the name)
BUNDLE_PATTERN = r"/qpo/static/plotly-widget-([0-9A-Za-z.+-]+)\.js"
#: the bundle is the same for a version: kept by the browser (not by shared caches: it is behind the login)
BUNDLE_CACHE_CONTROL = "private, max-age=31536000, immutable"


@functools.cache
def _bundle() -> tuple[bytes, str]:
    """plotly's widget bundle and its ETag, read once per server."""
    from qpo.workbench.figure_widgets import bundle_path

    body = bundle_path().read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _book_voila():
    from tornado import web
    from voila.app import Voila
    from voila.static_file_handler import AllowListFileHandler

    class SignedInFiles(AllowListFileHandler):
        """The notebook folder's allow-listed files, for a signed-in person only (else 403)."""

        async def prepare(self):
            provider = self.settings.get("identity_provider")
            user = await provider.get_user(self) if provider is not None else None
            if user is None:
                raise web.HTTPError(403)

    class WidgetBundle(web.RequestHandler):
        """plotly's widget bundle, for a signed-in person only (else 403), cached for good."""

        @property
        def base_url(self) -> str:  # what the identity provider's cookie handling reads
            return self.settings.get("base_url", "/")

        async def prepare(self):
            provider = self.settings.get("identity_provider")
            user = await provider.get_user(self) if provider is not None else None
            if user is None:
                raise web.HTTPError(403)

        def get(self, version: str):
            from qpo.workbench.figure_widgets import bundle_version

            if version != bundle_version():
                raise web.HTTPError(404)
            body, etag = _bundle()
            self.set_header("Content-Type", "text/javascript; charset=utf-8")
            self.set_header("Cache-Control", BUNDLE_CACHE_CONTROL)
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("ETag", etag)
            if self.request.headers.get("If-None-Match") == etag:
                self.set_status(304)
                return
            self.write(body)

    class BookVoila(Voila):
        def init_handlers(self):
            from jupyter_server.utils import url_path_join

            handlers = super().init_handlers()
            handlers = [(h[0], SignedInFiles, *h[2:]) if len(h) > 1 and h[1] is AllowListFileHandler else h
                        for h in handlers]
            return [(url_path_join(self.server_url, BUNDLE_PATTERN), WidgetBundle), *handlers]

    return BookVoila


def main(argv: list[str] | None = None) -> None:
    import os
    from pathlib import Path

    from qpo.workbench.auth import prelaunch_hook
    from qpo.workbench.figure_widgets import BUNDLE_MODE_ENV, bundle_route

    app = _book_voila().instance()
    app.initialize(sys.argv[1:] if argv is None else argv)
    app.voila_configuration.prelaunch_hook = prelaunch_hook
    # the page (templates/qpo_voila): its "Sign out" link, nothing from a CDN, and the bundle below
    app.template_paths.insert(0, str(Path(__file__).resolve().parent / "templates" / "qpo_voila"))
    if (os.environ.get(BUNDLE_MODE_ENV) or "").strip().lower() != "inline":
        # the page asks for the bundle in its head: fetched and compiled while the notebook runs,
        # ready when the figures import it
        # (Voila's renderer reads the template's extra resources from the configuration itself)
        conf = app.voila_configuration.config.VoilaConfiguration
        given = conf.get("resources")
        conf.resources = {**(dict(given) if isinstance(given, dict) else {}), "qpo_widget_bundle": bundle_route()}
    app.start()


if __name__ == "__main__":
    main()
