"""Delivery (qpo.operations.delivery) against real servers on 127.0.0.1: an aiosmtpd SMTP server
and an http.server webhook. One e-mail per advisor with their clients' alerts, one to the ops
desk, one JSON POST; ``delivered_at`` only for what was really sent; an unreachable server is a
clear error naming host:port (never the password) and the alerts stay for a later run."""
from __future__ import annotations

import email
from email import policy

import pytest
from sqlalchemy import select

from qpo.errors import InvalidValueError
from qpo.operations.delivery import DeliveryError, DeliverySettings, deliver_alerts, deliver_failed_run
from qpo.store import Alert
from qpo.store import operations as ops
from qpo.store.alerts import undelivered_alerts
from tests.servers import free_port, webhook_server
from tests.test_operations.test_alerts import MAXW, VAR, breach, run
from tests.test_operations.test_ops_store import D1, D2, portfolio_ids
from tests.test_store import book_stores
from tests.test_store.book_stores import (
    ANA,
    ANA_PF,
    BEN,
    BEN_PF,
)

store_url, engine, book = book_stores.store_url, book_stores.engine, book_stores.book  # the fixtures

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

OPS = ("ops@desk.test", "risk@desk.test")
SECRET = "s3cret-Pa55"


class Mailbox:
    """What the SMTP server received: (envelope sender, recipients, parsed message)."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for _, rcpt, m in self.messages if address in rcpt]


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on 127.0.0.1; it requires a login (user qpo, password SECRET)."""
    pytest.importorskip("aiosmtpd", reason="aiosmtpd is in the test extra: pip install -e .[test]")
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"qpo" and auth_data.password == SECRET.encode()
        return AuthResult(success=ok, handled=False)

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False, auth_required=True, ready_timeout=30)
    controller.start()
    box.port = port  # type: ignore[attr-defined]
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def webhook():
    """A real HTTP server on 127.0.0.1 that records each POST (path, JSON body, content type)."""
    with webhook_server("/hooks/T0KEN-path") as hook:
        yield hook


def settings_for(smtp_port: int | None, hook_url: str | None, **kw) -> DeliverySettings:
    return DeliverySettings(smtp_host="127.0.0.1" if smtp_port else None, smtp_port=smtp_port or 25,
                            sender="qpo@bank.test", user="qpo", password=SECRET, recipients=OPS, webhook=hook_url,
                            timeout=10, **kw)


def three_alerts(engine):
    """Two alerts of Ana's client, one of Ben's (Ana's second portfolio made through the ledger)."""
    from qpo.store import Actor, create_portfolio, session_scope

    with session_scope(engine) as s:
        create_portfolio(s, Actor.system("test"), "Ana Income", "Client C", ANA, cash=50_000.0,
                         trade_date="2024-01-02")
    ids = portfolio_ids(engine)
    sync = run(engine, D1, [ids[ANA_PF], ids[BEN_PF], ids["Ana Income"]],
               [breach(ids[ANA_PF], VAR, 0.03, 0.02), breach(ids[BEN_PF], MAXW, 0.21, 0.20),
                breach(ids["Ana Income"], "min names", 0.0, 5.0)])
    return sync.new


def delivered_at(engine) -> dict[int, object]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Alert.id, Alert.delivered_at)).all())


def test_one_email_per_advisor_one_to_ops_and_a_webhook_post(book, smtp, webhook):
    alerts = three_alerts(book.engine)
    report = deliver_alerts(book.engine, alerts, settings_for(smtp.port, webhook.url))
    assert report.ok and report.errors == [], report.errors
    assert sorted(report.delivered) == sorted(a["id"] for a in alerts)
    assert all(v is not None for v in delivered_at(book.engine).values())

    assert len(smtp.messages) == 3  # Ana, Ben, the ops desk
    (ana_mail,), (ben_mail,) = smtp.to(ANA), smtp.to(BEN)
    assert smtp.messages[0][0] == "qpo@bank.test"
    ana_body, ben_body = ana_mail.get_content(), ben_mail.get_content()
    assert ana_mail["Subject"] == f"[qpo] 2 new risk alerts for your clients (2 critical), {D1}"
    assert ANA_PF in ana_body and "Ana Income" in ana_body and BEN_PF not in ana_body
    assert "VaR (historical) 3.00% against a limit of 2.00%" in ana_body
    assert "min names 0 against a limit of 5" in ana_body
    assert BEN_PF in ben_body and ANA_PF not in ben_body and "[WARNING]" in ben_body
    assert ben_mail["Subject"] == f"[qpo] 1 new risk alert for your clients, {D1}"
    ops_mail = [m for _, rcpt, m in smtp.messages if sorted(rcpt) == sorted(OPS)]
    assert len(ops_mail) == 1 and ops_mail[0]["To"] == ", ".join(OPS)
    assert all(name in ops_mail[0].get_content() for name in (ANA_PF, BEN_PF, "Ana Income"))

    (path, doc, ctype), = webhook.posts
    assert path == "/hooks/T0KEN-path" and ctype == "application/json"
    assert doc["event"] == "alerts" and doc["count"] == 3
    got = {(a["portfolio"], a["check"], a["severity"], a["advisor_email"]) for a in doc["alerts"]}
    assert got == {(ANA_PF, VAR, "critical", ANA), (BEN_PF, MAXW, "warning", BEN), ("Ana Income", "min names",
                                                                                     "critical", ANA)}
    assert {a["first_seen"] for a in doc["alerts"]} == {D1.isoformat()}

    # delivered already: nothing is sent twice
    again = deliver_alerts(book.engine, alerts, settings_for(smtp.port, webhook.url))
    assert again.sent == [] and again.delivered == [] and len(smtp.messages) == 3 and len(webhook.posts) == 1
    assert undelivered_alerts(book.engine) == []


def test_an_unreachable_smtp_server_leaves_the_alerts_for_a_later_run(book, smtp, webhook):
    alerts = three_alerts(book.engine)
    dead = free_port()
    report = deliver_alerts(book.engine, alerts, settings_for(dead, webhook.url))
    assert not report.ok and report.delivered == []
    assert all(f"SMTP server at 127.0.0.1:{dead}" in e for e in report.errors) and len(report.errors) == 3
    assert not any(SECRET in e for e in report.errors)
    assert all(v is None for v in delivered_at(book.engine).values())
    assert len(webhook.posts) == 1  # the webhook took it, but not every channel: retried later
    with pytest.raises(DeliveryError, match=f"127.0.0.1:{dead}"):
        report.raise_for_errors()

    # the next run retries what was not delivered
    pending = undelivered_alerts(book.engine)
    assert sorted(a["id"] for a in pending) == sorted(a["id"] for a in alerts)
    retry = deliver_alerts(book.engine, pending, settings_for(smtp.port, webhook.url))
    assert retry.ok and len(retry.delivered) == 3 and len(smtp.messages) == 3


def test_a_wrong_password_is_an_error_that_does_not_show_it(book, smtp):
    alerts = three_alerts(book.engine)
    wrong = DeliverySettings(smtp_host="127.0.0.1", smtp_port=smtp.port, user="qpo", password="not-" + SECRET,
                             recipients=OPS, timeout=10)
    report = deliver_alerts(book.engine, alerts, wrong)
    assert report.errors and all(f"127.0.0.1:{smtp.port}" in e and "not-" + SECRET not in e for e in report.errors)
    assert "SMTPAuthenticationError" in report.errors[0]
    assert smtp.messages == [] and all(v is None for v in delivered_at(book.engine).values())
    assert SECRET not in repr(wrong)


def test_a_failing_webhook_names_its_host_and_port_not_its_secret_path(book, smtp, webhook):
    alerts = three_alerts(book.engine)
    webhook.status = 500
    report = deliver_alerts(book.engine, alerts, settings_for(smtp.port, webhook.url))
    host = webhook.url.split("/hooks")[0]
    assert report.errors == [f"the webhook at {host} answered HTTP 500 Internal Server Error: the delivery was not "
                             "accepted"]
    assert all(v is None for v in delivered_at(book.engine).values())
    dead = f"http://127.0.0.1:{free_port()}/hooks/T0KEN-path"
    report = deliver_alerts(book.engine, alerts, settings_for(None, dead))
    assert len(report.errors) == 1 and f"cannot reach the webhook at {dead.split('/hooks')[0]}" in report.errors[0]
    assert "T0KEN" not in report.errors[0]
    assert all(v is None for v in delivered_at(book.engine).values())


def test_nothing_configured_sends_nothing_and_marks_nothing(book):
    alerts = three_alerts(book.engine)
    report = deliver_alerts(book.engine, alerts, DeliverySettings())
    assert report.ok and report.sent == [] and "no delivery configured" in report.skipped[0]
    assert len(undelivered_alerts(book.engine)) == 3


def test_resolved_alerts_are_not_delivered(book, smtp):
    alerts = three_alerts(book.engine)
    ids = portfolio_ids(book.engine)
    run(book.engine, D2, [ids[ANA_PF]], [])  # Ana Growth's VaR passes now
    report = deliver_alerts(book.engine, alerts, settings_for(smtp.port, None))
    assert report.ok and len(report.delivered) == 2 and "1 alert(s) resolved" in report.skipped[0]
    assert ANA_PF not in smtp.to(ANA)[0].get_content()


def test_a_failed_run_is_delivered_to_ops_and_the_webhook(book, smtp, webhook):
    with pytest.raises(RuntimeError):
        with ops.recorded_run(book.engine, "risk", D1):
            raise RuntimeError("the database went away")
    failed = ops.last_runs(book.engine, kind="risk", n=1)[0]
    report = deliver_failed_run(failed, settings_for(smtp.port, webhook.url))
    assert report.ok, report.errors
    (sender, rcpt, msg), = smtp.messages
    assert sorted(rcpt) == sorted(OPS) and msg["Subject"] == f"[qpo] FAILED: the risk run of {D1} (run {failed['id']})"
    assert "RuntimeError: the database went away" in msg.get_content()
    (_, doc, _), = webhook.posts
    assert doc["event"] == "run_failed" and doc["run"]["id"] == failed["id"] and doc["run"]["status"] == "FAILED"
    assert doc["run"]["as_of"] == D1.isoformat() and "went away" in doc["run"]["error"]
    dead = deliver_failed_run(failed, settings_for(free_port(), None))
    assert len(dead.errors) == 1 and "127.0.0.1:" in dead.errors[0] and SECRET not in dead.errors[0]


def test_settings_from_the_environment():
    env = {"QPO_SMTP_HOST": "mail.bank.test", "QPO_SMTP_PORT": "587", "QPO_SMTP_SENDER": "risk@bank.test",
           "QPO_SMTP_USER": "qpo", "QPO_SMTP_PASSWORD": SECRET, "QPO_SMTP_STARTTLS": "true",
           "QPO_ALERT_RECIPIENTS": " ops@bank.test, desk@bank.test ,", "QPO_ALERT_WEBHOOK": "https://hooks.test/x/y"}
    s = DeliverySettings.from_env(env)
    assert (s.smtp_host, s.smtp_port, s.sender, s.user, s.password, s.starttls) == (
        "mail.bank.test", 587, "risk@bank.test", "qpo", SECRET, True)
    assert s.recipients == ("ops@bank.test", "desk@bank.test") and s.webhook_address == "https://hooks.test:443"
    assert SECRET not in repr(s)
    assert not DeliverySettings.from_env({}).configured
    with pytest.raises(InvalidValueError, match="QPO_SMTP_PORT must be a port number"):
        DeliverySettings.from_env({"QPO_SMTP_PORT": "smtp"})
    with pytest.raises(InvalidValueError, match="QPO_SMTP_STARTTLS must be"):
        DeliverySettings.from_env({"QPO_SMTP_STARTTLS": "maybe"})
    with pytest.raises(InvalidValueError, match="not an e-mail address"):
        DeliverySettings.from_env({"QPO_ALERT_RECIPIENTS": "ops"})
    with pytest.raises(InvalidValueError, match="http:// or https:// URL"):
        DeliverySettings.from_env({"QPO_ALERT_WEBHOOK": "ftp://x"})
    # a login without STARTTLS to another machine: the password would cross the network in clear; the
    # e-mail channel is refused before connecting (the webhook and the report go on)
    from email.message import EmailMessage

    from qpo.operations.delivery import DeliveryError, _send_email

    clear = {k: v for k, v in env.items() if k != "QPO_SMTP_STARTTLS"}
    for there in ("mail.bank.test", "127.evil.test", "10.0.0.7"):
        refused = DeliverySettings.from_env({**clear, "QPO_SMTP_HOST": there})
        assert refused.clear_login.startswith(f"QPO_SMTP_USER and QPO_SMTP_PASSWORD would be sent in clear to {there}")
        with pytest.raises(DeliveryError, match="set QPO_SMTP_STARTTLS=1") as info:
            _send_email(refused, EmailMessage(), ["ops@bank.test"])
        assert SECRET not in str(info.value)
    for here in ("localhost", "127.0.0.1", "::1", "[::1]", "127.0.0.2", "::ffff:127.0.0.1"):  # this machine
        assert DeliverySettings.from_env({**clear, "QPO_SMTP_HOST": here}).clear_login is None
    assert DeliverySettings.from_env(env).clear_login is None  # STARTTLS
