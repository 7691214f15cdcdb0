"""``qpo alerts``: the breaches the risk runs found, and acknowledging them.

- ``qpo alerts [--state new|acknowledged|resolved|open] [--json] [--as EMAIL]`` lists the alerts
  the actor may see (an advisor their own clients'; a researcher or an admin all), newest first;
- ``qpo alerts ack ID [--json] [--as EMAIL]`` acknowledges one (the client's advisor or an admin;
  recorded in the audit trail).

Exit statuses and the ``--json`` contract are the book commands' (:mod:`qpo.cli._common`): 0 done,
2 refused (an unknown alert id, a resolved alert), 3 no store, 4 access refused (no actor, an
unknown one, another advisor's client's alert, a researcher acknowledging).
"""
from __future__ import annotations

import argparse

from qpo.cli import _common as c

#: the columns ``qpo alerts`` shows (``--json`` has every field)
SHOWN = ["id", "state", "severity", "portfolio", "check", "value", "limit", "first_seen", "last_seen",
         "acknowledged_by"]


def _fmt(row: dict, key: str) -> str:
    value = row.get(key)
    if value is None:
        return "undefined" if key == "value" else ""
    return f"{value:.0f}" if str(row.get("check", "")).startswith("min names") else c.pct(value)


def _cmd_alerts(args) -> int:
    from qpo.store.alerts import list_alerts

    alerts = list_alerts(c.reader(), actor=c.actor(args), state=args.state)
    if args.json:
        c.emit_json({"alerts": alerts, "state": args.state, "count": len(alerts)})
        return 0
    if not alerts:
        c.say(f"no {args.state + ' ' if args.state else ''}alerts you may see")
        return 0
    import pandas as pd

    frame = pd.DataFrame([{**{k: a.get(k) for k in SHOWN}, "value": _fmt(a, "value"), "limit": _fmt(a, "limit")}
                          for a in alerts], columns=SHOWN)
    c.say(c.table(frame, {"portfolio": lambda v: c.cell(v, 32), "check": lambda v: c.cell(v, 32)}))
    open_new = sum(1 for a in alerts if a["state"] == "new")
    c.say(f"{len(alerts)} alert(s); {open_new} new" + (" (`qpo alerts ack ID` acknowledges one)" if open_new else ""))
    return 0


def _cmd_ack(args) -> int:
    from qpo.store.alerts import acknowledge_alert

    alert = acknowledge_alert(c.updater(), args.id, actor=c.actor(args))
    if args.json:
        c.emit_json({"alert": alert})
    else:
        c.say(f"alert {alert['id']} ({alert['check']} of {alert['portfolio']!r}) acknowledged by "
              f"{alert['acknowledged_by']} at {alert['acknowledged_at']:%Y-%m-%d %H:%M:%S}"
              if alert["acknowledged_at"] is not None else f"alert {alert['id']}: {alert['state']}")
    return 0


def register(sub) -> None:
    """Add ``alerts`` (and ``alerts ack``) to the top-level subparsers."""
    al = sub.add_parser("alerts", help="the breaches of portfolio limits the risk runs found; ack one",
                        description="The alerts you may see, newest first (an advisor: their clients'). "
                                    "`qpo alerts ack ID` acknowledges one.", allow_abbrev=False)
    c.add_actor_option(al)
    c.add_json_option(al)
    al.add_argument("--state", choices=["new", "acknowledged", "resolved", "open"], default=None,
                    help="only alerts in this state (open: new or acknowledged; default: all)")
    al.set_defaults(func=_cmd_alerts, book=True, reads=True)
    alsub = al.add_subparsers(dest="alerts_action", metavar="{ack}")
    ack = alsub.add_parser("ack", help="acknowledge an alert (its client's advisor or an admin)",
                           description="Acknowledge a new alert: you have seen it. Recorded in the audit trail.",
                           allow_abbrev=False)
    ack.add_argument("id", help="the alert's id (`qpo alerts` lists them)")
    c.add_actor_option(ack)
    ack.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                     help="print one JSON document on stdout (errors too: {\"error\": ...})")
    ack.set_defaults(func=_cmd_ack, book=True, reads=False)
