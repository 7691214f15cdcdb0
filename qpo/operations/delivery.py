"""Delivery of alerts and of failed scheduled runs: e-mail through SMTP and a webhook (JSON POST).

Settings come from the environment (:meth:`DeliverySettings.from_env`):

==========================  ================================================================
``QPO_SMTP_HOST``           the SMTP server (no host: no e-mail)
``QPO_SMTP_PORT``           its port (default 25; 587 with STARTTLS is usual)
``QPO_SMTP_SENDER``         the From address (default ``qpo@<host>``)
``QPO_SMTP_USER``           log in as this user (optional) ...
``QPO_SMTP_PASSWORD``       ... with this password (never logged nor shown in an error)
``QPO_SMTP_STARTTLS``       ``1``/``true``: upgrade the connection with STARTTLS before logging in
``QPO_ALERT_RECIPIENTS``    the operations desk's addresses, comma-separated
``QPO_ALERT_WEBHOOK``       a URL that receives each delivery as a JSON POST (e.g. a chat hook)
==========================  ================================================================

:func:`deliver_alerts` sends **one e-mail per advisor** with their clients' alerts (the advisor's
e-mail is read from the store), **one e-mail to the operations recipients** with all of them, and
**one JSON POST** to the webhook (``{"event": "alerts", "alerts": [...]}``). An alert counts as
delivered, and gets its ``delivered_at``, only when every configured channel that carries it
(its advisor's e-mail and the ops e-mail when SMTP is set; the webhook when set) really took it;
otherwise ``delivered_at`` stays NULL and the next run retries it
(:func:`qpo.store.alerts.undelivered_alerts`): delivery is at least once, never silently lost.
An unreachable server is an error in the report that names its ``host:port`` (never a password,
and never a webhook's path or query, which often hold its secret).

:func:`deliver_failed_run` tells the ops recipients and the webhook that a scheduled run failed
(``{"event": "run_failed", "run": {...}}``).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from qpo.errors import InvalidValueError, QpoError

#: seconds to wait for an SMTP server or the webhook
DEFAULT_TIMEOUT = 20.0
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


class DeliveryError(QpoError):
    """Alerts or a failed-run notice that could not be delivered; the message names the server's
    host:port (never a password or a webhook's secret path)."""


@dataclass(frozen=True)
class DeliverySettings:
    """Where alerts go. ``password`` is kept out of ``repr``."""

    smtp_host: str | None = None
    smtp_port: int = 25
    sender: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    recipients: tuple[str, ...] = ()
    webhook: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self):
        if self.smtp_port is not None and not (isinstance(self.smtp_port, int) and 0 < self.smtp_port < 65536):
            raise InvalidValueError(f"the SMTP port must be a whole number from 1 to 65535, got {self.smtp_port!r}")
        if self.webhook is not None:
            parsed = urllib.parse.urlsplit(self.webhook)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise InvalidValueError(f"QPO_ALERT_WEBHOOK must be an http:// or https:// URL, got one with scheme "
                                        f"{parsed.scheme!r} and host {parsed.hostname!r}")
        for address in self.recipients:
            if "@" not in address:
                raise InvalidValueError(f"QPO_ALERT_RECIPIENTS holds {address!r}, which is not an e-mail address "
                                        "(give a comma-separated list: ops@example.com,desk@example.com)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeliverySettings:
        """The settings in ``environ`` (default: ``os.environ``); the module's docstring lists them."""
        env = os.environ if environ is None else environ
        host = (env.get("QPO_SMTP_HOST") or "").strip() or None
        port_text = (env.get("QPO_SMTP_PORT") or "").strip()
        try:
            port = int(port_text) if port_text else 25
        except ValueError:
            raise InvalidValueError(f"QPO_SMTP_PORT must be a port number (e.g. 25 or 587), got {port_text!r}") from None
        tls_text = (env.get("QPO_SMTP_STARTTLS") or "").strip().lower()
        if tls_text not in _TRUE + _FALSE:
            raise InvalidValueError(f"QPO_SMTP_STARTTLS must be 1/true/yes or 0/false/no, got {tls_text!r}")
        recipients = tuple(a.strip() for a in (env.get("QPO_ALERT_RECIPIENTS") or "").split(",") if a.strip())
        return cls(smtp_host=host, smtp_port=port, sender=(env.get("QPO_SMTP_SENDER") or "").strip() or None,
                   user=(env.get("QPO_SMTP_USER") or "").strip() or None, password=env.get("QPO_SMTP_PASSWORD") or None,
                   starttls=tls_text in _TRUE, recipients=recipients,
                   webhook=(env.get("QPO_ALERT_WEBHOOK") or "").strip() or None)

    @property
    def clear_login(self) -> str | None:
        """Why the SMTP login may not be sent (a password in clear to another machine), or None."""
        if self.user and not self.starttls and self.smtp_host is not None and not _loopback(self.smtp_host):
            return (f"QPO_SMTP_USER and QPO_SMTP_PASSWORD would be sent in clear to {self.smtp_host}: set "
                    "QPO_SMTP_STARTTLS=1 (usually with QPO_SMTP_PORT=587), or relay through a server on this machine")
        return None

    @property
    def email_enabled(self) -> bool:
        return self.smtp_host is not None

    @property
    def configured(self) -> bool:
        return self.email_enabled or self.webhook is not None

    @property
    def smtp_address(self) -> str:
        return f"{self.smtp_host}:{self.smtp_port}"

    @property
    def webhook_address(self) -> str:
        """The webhook's scheme, host and port only (its path often holds its secret)."""
        if self.webhook is None:
            return ""
        parsed = urllib.parse.urlsplit(self.webhook)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        return f"{parsed.scheme}://{parsed.hostname}:{port}"

    @property
    def from_address(self) -> str:
        return self.sender or f"qpo@{self.smtp_host or 'localhost'}"


@dataclass
class DeliveryReport:
    """What a delivery did: ``sent`` (one dict per message: channel, to, alerts), ``errors`` (one
    text per failed message), ``delivered`` (the alert ids marked delivered), ``skipped`` (why
    something was not attempted)."""

    sent: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise a :class:`DeliveryError` with every error when something failed."""
        if self.errors:
            raise DeliveryError("; ".join(self.errors))

    def to_dict(self) -> dict:
        return {"sent": self.sent, "errors": self.errors, "delivered": self.delivered, "skipped": self.skipped}


# -- formatting -------------------------------------------------------------------------------------
def _fmt(check: str, value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "undefined"
    if check.startswith("min names"):
        return f"{value:.0f}"
    return f"{100 * value:.2f}%"


def _plain(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _alert_json(a: Mapping) -> dict:
    keys = ("id", "portfolio_id", "portfolio", "advisor_email", "check", "value", "limit", "severity", "state",
            "message", "first_seen", "last_seen")
    return {k: _plain(a.get(k)) for k in keys}


def _loopback(host: str) -> bool:
    """Whether ``host`` is this machine (a login to it never crosses a network): ``localhost`` or
    a loopback address (``127.0.0.1``, ``::1``); a name beginning "127." is a name, not one."""
    import ipaddress

    name = host.strip().lower().strip("[]")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _alert_lines(alerts: Sequence[Mapping]) -> list[str]:
    lines = []
    for a in sorted(alerts, key=lambda x: (x.get("severity") != "critical", str(x.get("portfolio")), str(x.get("check")))):
        lines.append(f"- [{str(a.get('severity', '')).upper()}] {a.get('portfolio')}: {a.get('check')} "
                     f"{_fmt(str(a.get('check')), a.get('value'))} against a limit of "
                     f"{_fmt(str(a.get('check')), a.get('limit'))} (alert {a.get('id')}, since {a.get('first_seen')})")
        if a.get("message"):
            lines.append(f"    {a['message']}")
    return lines


def _alerts_email(settings: DeliverySettings, to: Sequence[str], alerts: Sequence[Mapping], *, whose: str) -> EmailMessage:
    critical = sum(1 for a in alerts if a.get("severity") == "critical")
    dates = sorted({str(a.get("last_seen")) for a in alerts if a.get("last_seen") is not None})
    msg = EmailMessage()
    msg["Subject"] = (f"[qpo] {len(alerts)} new risk alert{'s' if len(alerts) != 1 else ''} {whose}"
                      + (f" ({critical} critical)" if critical else "") + (f", {dates[-1]}" if dates else ""))
    msg["From"] = settings.from_address
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="qpo")
    body = [f"The risk run found {len(alerts)} new breach{'es' if len(alerts) != 1 else ''} of portfolio limits "
            f"{whose}:", "", *_alert_lines(alerts), "",
            "Acknowledge one with `qpo alerts ack ID`; `qpo alerts --state new` lists the open ones.",
            "An alert resolves itself when a later run finds its check passing."]
    msg.set_content("\n".join(body) + "\n")
    return msg


def _send_email(settings: DeliverySettings, msg: EmailMessage, to: Sequence[str]) -> None:
    """Send one message; a failure is a DeliveryError naming host:port (never the password). A
    login that would go in clear to another machine is refused before connecting (the e-mail
    channel fails; the webhook and the report go on)."""
    if settings.clear_login:
        raise DeliveryError(settings.clear_login)
    try:
        with smtplib.SMTP(settings.smtp_host or "localhost", settings.smtp_port, timeout=settings.timeout) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            refused = smtp.send_message(msg, from_addr=settings.from_address, to_addrs=list(to))
            if refused:
                raise DeliveryError(f"the SMTP server at {settings.smtp_address} refused recipient(s) "
                                    f"{', '.join(sorted(refused))}")
    except DeliveryError:
        raise
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"cannot send e-mail to {', '.join(to)} through the SMTP server at "
                            f"{settings.smtp_address}: {_scrub(exc, settings)}") from None


def _scrub(exc: BaseException, settings: DeliverySettings) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    if settings.password:
        text = text.replace(settings.password, "***")
    if settings.webhook:
        text = text.replace(settings.webhook, settings.webhook_address)
    return text[:300]


def _post_json(settings: DeliverySettings, document: dict) -> None:
    """POST ``document`` as JSON to the webhook; anything but a 2xx answer is a DeliveryError."""
    assert settings.webhook is not None
    data = json.dumps(document, allow_nan=False, default=str).encode()
    request = urllib.request.Request(settings.webhook, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "qpo-alerts"})
    where = f"the webhook at {settings.webhook_address}"
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:  # noqa: S310 - http(s) checked
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{where} answered HTTP {exc.code} {exc.reason}: the delivery was not accepted") from None
    except (TimeoutError, OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"cannot reach {where}: {_scrub(reason if isinstance(reason, BaseException) else exc, settings)}"
                            ) from None


# -- alerts ----------------------------------------------------------------------------------------
def deliver_alerts(engine, alerts: Sequence[Mapping], settings: DeliverySettings) -> DeliveryReport:
    """Deliver ``alerts`` (dicts with at least their ``id``, e.g. :class:`AlertSync`'s ``new``):
    one e-mail per advisor with their clients' alerts, one to the ops recipients, one JSON POST to
    the webhook; set ``delivered_at`` of the alerts every configured channel took (the module's
    docstring has the rule). Alerts resolved or delivered already are left out. Never raises for a
    failed delivery: the report's ``errors`` say what failed (``raise_for_errors()`` to raise)."""
    from qpo.store.alerts import get_alerts, mark_delivered

    report = DeliveryReport()
    ids = sorted({int(a["id"]) for a in alerts})
    if not ids:
        return report
    if not settings.configured:
        report.skipped.append("no delivery configured (set QPO_SMTP_HOST and QPO_ALERT_RECIPIENTS, or "
                              "QPO_ALERT_WEBHOOK): the alerts stay undelivered for a later run")
        return report
    fresh = get_alerts(engine, ids)  # the store's own record: states and the advisors' e-mails
    todo = [a for a in fresh if a["delivered_at"] is None and a["state"] == "new"]  # acknowledged: seen already
    left = len(ids) - len(todo)
    if left:
        report.skipped.append(f"{left} alert(s) resolved, acknowledged, delivered already or no longer in the store")
    if not todo:
        return report
    failed: set[int] = set()
    if settings.email_enabled:
        by_advisor: dict[str, list[dict]] = {}
        for a in todo:
            by_advisor.setdefault(a["advisor_email"], []).append(a)
        for advisor, theirs in sorted(by_advisor.items()):
            _try(report, failed, theirs, "email", [advisor],
                 lambda to=advisor, batch=theirs: _send_email(
                     settings, _alerts_email(settings, [to], batch, whose="for your clients"), [to]))
        if settings.recipients:
            _try(report, failed, todo, "email", list(settings.recipients),
                 lambda: _send_email(settings, _alerts_email(settings, settings.recipients, todo, whose="in the book"),
                                     settings.recipients))
        else:
            report.skipped.append("no ops recipients (QPO_ALERT_RECIPIENTS): only the advisors were e-mailed")
    if settings.webhook is not None:
        document = {"event": "alerts", "count": len(todo), "alerts": [_alert_json(a) for a in todo]}
        _try(report, failed, todo, "webhook", [settings.webhook_address], lambda: _post_json(settings, document))
    delivered = [a["id"] for a in todo if a["id"] not in failed]
    if delivered:
        mark_delivered(engine, delivered, severities={a["id"]: a["severity"] for a in todo})
    report.delivered = delivered
    return report


def _try(report: DeliveryReport, failed: set[int], alerts: Sequence[Mapping], channel: str, to: list[str], send) -> bool:
    try:
        send()
    except DeliveryError as exc:
        report.errors.append(str(exc))
        failed.update(int(a["id"]) for a in alerts)
        return False
    report.sent.append({"channel": channel, "to": to, "alerts": [int(a["id"]) for a in alerts]})
    return True


# -- failed runs -------------------------------------------------------------------------------------
def deliver_failed_run(run: Mapping, settings: DeliverySettings) -> DeliveryReport:
    """Tell the ops recipients (e-mail) and the webhook (``{"event": "run_failed", "run": ...}``)
    that a scheduled run failed. ``run`` is a run as :func:`qpo.store.operations.last_runs` gives
    it (id, kind, as_of, status, error, started_at, finished_at). Failures are in the report."""
    report = DeliveryReport()
    if not settings.configured:
        report.skipped.append("no delivery configured (QPO_SMTP_HOST with QPO_ALERT_RECIPIENTS, or QPO_ALERT_WEBHOOK)")
        return report
    info = {k: _plain(run.get(k)) for k in ("id", "kind", "as_of", "status", "error", "started_at", "finished_at",
                                            "portfolios")}
    label = f"the {info.get('kind') or 'scheduled'} run of {info.get('as_of') or 'an unknown date'}"
    which = f"run {info.get('id')}" if info.get("id") is not None else "not recorded"
    failed: set[int] = set()
    if settings.email_enabled and settings.recipients:
        msg = EmailMessage()
        msg["Subject"] = f"[qpo] FAILED: {label} ({which})"
        msg["From"] = settings.from_address
        msg["To"] = ", ".join(settings.recipients)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="qpo")
        kind = str(info.get("kind") or "")
        rerun = (f"Rerun it once the cause is fixed (`qpo pipeline run {kind.removeprefix('pipeline ')}`).\n"
                 if kind.startswith("pipeline ") else
                 "Its date has no half-written results: rerun it once the cause is fixed "
                 "(`qpo nightly value|risk --as-of DATE`).\n")
        msg.set_content(f"{label[0].upper()}{label[1:]} failed ({which}, status {info.get('status')}, "
                        f"started {info.get('started_at')}, ended {info.get('finished_at')}).\n\n"
                        f"Error:\n{info.get('error') or '(no error recorded)'}\n\n" + rerun)
        _try(report, failed, [], "email", list(settings.recipients),
             lambda: _send_email(settings, msg, settings.recipients))
    elif settings.email_enabled:
        report.skipped.append("no ops recipients (QPO_ALERT_RECIPIENTS): no e-mail sent for the failed run")
    if settings.webhook is not None:
        _try(report, failed, [], "webhook", [settings.webhook_address],
             lambda: _post_json(settings, {"event": "run_failed", "run": info}))
    return report
