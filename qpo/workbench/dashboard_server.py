"""The dashboard's server: Voila with the book's login (:mod:`qpo.workbench.auth`).

``python -m qpo.workbench.dashboard_server NOTEBOOK [voila options]`` is what ``qpo dashboard``
runs: Voila's own application with the identity provider of the client book, the hook that tells
each visit's kernel who signed in, and the notebook folder's files served only to a signed-in
person (Voila serves them without asking by default).

It also serves plotly's widget bundle (:mod:`qpo.workbench.figure_widgets`) once, at
``/qpo/static/plotly-widget-<plotly version>.js``, to a signed-in person only (else 403), with
headers that let the browser keep it for good (a new plotly is a new address): the figures of a
visit's kernel name that address instead of carrying the 5 MB bundle each through the websocket.

Each visit's kernel is its session's only (:class:`qpo.workbench.auth.KernelOwners`): the kernel
manager records who the page that started it was for, and every route naming a kernel (Jupyter
Server's ``/api/kernels/<id>`` and its websocket ``/channels``, any other ``/api/kernels/<id>/...``,
Voila's ``/voila/execution/<id>``, ``/voila/query/<id>`` and ``/voila/api/shutdown/<id>``) answers
403 to any other session, signed in or not, an admin's too, whether the kernel exists or not.

Before it serves, the server has the store's price panel written to its snapshot
(:mod:`qpo.workbench.price_snapshot`, in a child process that Voila's own start-up overlaps: the
server itself loads no pandas and holds no panel), which each visit's kernel then loads instead of
reading the whole panel from the store while it is current. No store, no market data, or a store
that cannot be read: no snapshot, and the server serves all the same (the kernels read the store).
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import sys

#: the route of plotly's widget bundle (its version in the name)
BUNDLE_PATTERN = r"/qpo/static/plotly-widget-([0-9A-Za-z.+-]+)\.js"
#: the bundle is the same for a version: kept by the browser (not by shared caches: it is behind the login)
BUNDLE_CACHE_CONTROL = "private, max-age=31536000, immutable"
#: seconds the server waits for its price snapshot before it serves without it
SNAPSHOT_TIMEOUT = 60


@functools.cache
def _bundle() -> tuple[bytes, str]:
    """plotly's widget bundle and its ETag, read once per server."""
    from qpo.workbench.figure_widgets import bundle_path

    body = bundle_path().read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _owned_kernels(base: type) -> type:
    """``base`` (Voila's kernel manager class) that records who each kernel it starts is for
    (:data:`qpo.workbench.auth.VISITOR` at the start) in its ``owners``."""
    from qpo.workbench.auth import VISITOR, KernelOwners

    class OwnedKernels(base):  # type: ignore[misc, valid-type]
        owners_recorded = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.owners = KernelOwners()
            self._starting: set[str] = set()  # ids given to kernels not yet running

        async def start_kernel(self, *args, **kwargs):
            owner, kernel_id = VISITOR.get(), kwargs.get("kernel_id")
            if owner is not None and (kernel_id is None or kernel_id not in self):
                # recorded before it runs: its id reaches no page before it has an owner
                kwargs["kernel_id"] = kernel_id = kernel_id or self.new_kernel_id()
                self._starting.add(kernel_id)
                # (the owners of kernels gone meanwhile are forgotten; those still starting kept)
                self.owners.record(kernel_id, owner, alive={*self.list_kernel_ids(), *self._starting})
            try:
                return await super().start_kernel(*args, **kwargs)
            except BaseException:
                if owner is not None and kernel_id is not None:
                    self.owners.forget(kernel_id)
                raise
            finally:
                if kernel_id is not None:
                    self._starting.discard(kernel_id)

    OwnedKernels.__name__ = OwnedKernels.__qualname__ = f"Owned{base.__name__}"
    return OwnedKernels


class OwnKernelOnly:
    """Mixin of a handler whose URL names a kernel (its first group or ``kernel_id``): the session
    that owns the kernel only, else 403 before anything else (also before a websocket opens)."""

    async def prepare(self, *args, **kwargs):
        done = super().prepare(*args, **kwargs)  # type: ignore[misc]
        if inspect.isawaitable(done):
            await done
        if self._finished:  # type: ignore[attr-defined]  # e.g. redirected to the login page
            return
        kernel_id = self.path_kwargs.get("kernel_id") or (self.path_args[0] if self.path_args else "")  # type: ignore[attr-defined]
        km = self.kernel_manager  # type: ignore[attr-defined]
        owners = getattr(km, "owners", None)
        if owners is None or kernel_id not in km or not owners.may_use(kernel_id, self):
            self.log.warning("refused %s %s: not a kernel of this session",  # type: ignore[attr-defined]
                             self.request.method, self.request.path)  # type: ignore[attr-defined]
            # answered here (an error page needs templates the websockets' handlers lack)
            self.set_status(403)  # type: ignore[attr-defined]
            self.finish()  # type: ignore[attr-defined]


#: Voila's routes naming a kernel whose pattern does not say so (the kernel id is its first group)
_KERNEL_ROUTES = (r"/voila/api/shutdown/",)


def _names_kernel(pattern: str) -> bool:
    from jupyter_server.services.kernels.handlers import _kernel_id_regex

    return _kernel_id_regex in pattern or any(r in pattern for r in _KERNEL_ROUTES)


def _book_voila():
    from jupyter_server.base.handlers import APIHandler
    from jupyter_server.services.kernels.handlers import _kernel_id_regex
    from tornado import web
    from voila.app import Voila
    from voila.static_file_handler import AllowListFileHandler
    from voila.tornado.handler import TornadoVoilaHandler

    from qpo.workbench.auth import VISITOR, visitor

    class OwnedPage(TornadoVoilaHandler):
        """Voila's page: the visit's kernel is started for the session of the request."""

        async def get(self, path=None):
            token = VISITOR.set(visitor(self))
            try:
                await super().get(path)
            finally:
                VISITOR.reset(token)

    class OtherKernelURL(OwnKernelOnly, APIHandler):
        """``/api/kernels/<id>/...`` (other than ``channels``): 403 but to the kernel's session, and
        404 to it (the dashboard serves no kernel action: no interrupt, no restart)."""

        def get(self, kernel_id, rest):
            raise web.HTTPError(404)

        post = put = patch = delete = get

    def owned(cls: type) -> type:
        return type(f"Owned{cls.__name__}", (OwnKernelOnly, cls), {})

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
            found = {"files": sum(len(h) > 1 and h[1] is AllowListFileHandler for h in handlers),
                     "kernel": sum(len(h) > 1 and _names_kernel(h[0]) for h in handlers),
                     "page": sum(len(h) > 1 and h[1] is TornadoVoilaHandler for h in handlers)}
            missing = [k for k, n in found.items() if n == 0]
            if missing:  # fail closed: a Voila whose routes changed would serve them without the login's checks
                raise RuntimeError(f"the login cannot wrap this Voila's {', '.join(missing)} route(s) (voila "
                                   f"{_voila_version()}): refusing to serve; qpo supports voila 0.5")
            handlers = [(h[0], SignedInFiles, *h[2:]) if len(h) > 1 and h[1] is AllowListFileHandler else h
                        for h in handlers]
            handlers = [(h[0], owned(h[1]), *h[2:]) if len(h) > 1 and _names_kernel(h[0]) else h for h in handlers]
            handlers = [(h[0], OwnedPage, *h[2:]) if len(h) > 1 and h[1] is TornadoVoilaHandler else h
                        for h in handlers]
            # before the page's catch-all route (which would send them to the files)
            actions = (url_path_join(self.server_url, rf"/api/kernels/{_kernel_id_regex}/(?P<rest>.+)"), OtherKernelURL)
            last = next((i for i, h in enumerate(handlers) if len(h) > 1 and h[1] is OwnedPage), len(handlers))
            return [(url_path_join(self.server_url, BUNDLE_PATTERN), WidgetBundle), *handlers[:last], actions,
                    *handlers[last:]]

        def init_settings(self):
            conf = self.voila_configuration
            if not getattr(conf.multi_kernel_manager_class, "owners_recorded", False):
                conf.multi_kernel_manager_class = _owned_kernels(conf.multi_kernel_manager_class)
            return super().init_settings()

    return BookVoila


def _voila_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("voila")
    except PackageNotFoundError:
        return "unknown"


def _precompile():
    """A child process compiling qpo's modules to bytecode (``__pycache__``): each visit's kernel
    imports them, and where bytecode is not written on import (``PYTHONDONTWRITEBYTECODE``, a
    read-only install) every kernel would compile them again (about 0.25 s of its start)."""
    import subprocess
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent
    try:
        return subprocess.Popen([sys.executable, "-m", "compileall", "-q", "-j", "0", str(package)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def _finish_precompile(child, log) -> None:
    import subprocess

    if child is None:
        return
    try:
        child.wait(timeout=SNAPSHOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    if child.returncode:  # a folder it may not write: the kernels compile in memory, as before
        log.info("qpo's modules were not all compiled to bytecode (exit %s); the kernels compile them", child.returncode)


def _start_snapshot():
    """The child process writing the store's price snapshot (None when it could not start)."""
    import subprocess

    try:
        return subprocess.Popen([sys.executable, "-m", "qpo.workbench.price_snapshot"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError:
        return None


def _finish_snapshot(child, log) -> None:
    """Wait (up to :data:`SNAPSHOT_TIMEOUT` s) for ``child`` and log what it said: the server
    serves in any case (a kernel without a snapshot reads the store)."""
    import subprocess

    if child is None:
        log.warning("no price snapshot: its process could not start")
        return
    try:
        said, _ = child.communicate(timeout=SNAPSHOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        log.warning("no price snapshot: not written within %s s", SNAPSHOT_TIMEOUT)
        return
    lines = [line for line in (said or "").splitlines() if "price snapshot" in line]  # not a warning it printed
    last = lines[-1] if lines else f"no price snapshot: its process ended with status {child.returncode}"
    (log.info if child.returncode == 0 else log.warning)("%s", last)


def main(argv: list[str] | None = None) -> None:
    import os
    from pathlib import Path

    from qpo.workbench._auth_state import TRUSTED_PROXIES_ENV, trusted_proxies
    from qpo.workbench.auth import prelaunch_hook
    from qpo.workbench.figure_widgets import BUNDLE_MODE_ENV, bundle_route

    trusted_proxies(os.environ.get(TRUSTED_PROXIES_ENV))  # a bad value refused now, not at each sign-in
    snapshot = _start_snapshot()  # written while Voila starts
    compiled = _precompile()
    try:
        app = _book_voila().instance()
        app.initialize(sys.argv[1:] if argv is None else argv)
    except BaseException:  # a bad option: no server, no snapshot either
        for child in (snapshot, compiled):
            if child is not None:
                child.kill()
                child.wait()
        raise
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
    _finish_snapshot(snapshot, app.log)
    _finish_precompile(compiled, app.log)
    app.start()


if __name__ == "__main__":
    main()
