"""The dashboard's server: Voila with the book's login (:mod:`qpo.workbench.auth`).

``python -m qpo.workbench.dashboard_server NOTEBOOK [voila options]`` is what ``qpo dashboard``
runs: Voila's own application with the identity provider of the client book, the hook that tells
each visit's kernel who signed in, and the notebook folder's files served only to a signed-in
person (Voila serves them without asking by default).
"""
from __future__ import annotations

import sys


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

    class BookVoila(Voila):
        def init_handlers(self):
            handlers = super().init_handlers()
            return [(h[0], SignedInFiles, *h[2:]) if len(h) > 1 and h[1] is AllowListFileHandler else h
                    for h in handlers]

    return BookVoila


def main(argv: list[str] | None = None) -> None:
    from qpo.workbench.auth import prelaunch_hook

    app = _book_voila().instance()
    app.initialize(sys.argv[1:] if argv is None else argv)
    app.voila_configuration.prelaunch_hook = prelaunch_hook
    app.start()


if __name__ == "__main__":
    main()
