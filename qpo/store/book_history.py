"""Reading what the book's nightly runs recorded about one portfolio over time.

* :func:`book_risk_history`: the ``book_risk`` rows (the 18:00 risk run) of one portfolio, oldest
  first: volatility, VaRs and CVaRs, beta, max drawdown, worst stress loss, compliance and the
  number of breaches, if the actor may read the portfolio (an advisor: their own clients only).
"""
from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select

from qpo._checks import quote
from qpo.store import _inputs as check
from qpo.store.access import Actor, actor_for
from qpo.store.models import BookRisk, ClientPortfolio, User

#: the risk numbers of a ``book_risk`` row (floats; NaN where the run could not compute one)
RISK_NUMBERS = ("volatility", "var_historical", "cvar_historical", "var_parametric", "cvar_parametric", "beta",
                "max_drawdown", "worst_stress")
#: the columns of :func:`book_risk_history`'s frame
BOOK_RISK_HISTORY_COLUMNS = ("portfolio_id", "portfolio", "advisor_email", "as_of", *RISK_NUMBERS, "compliant",
                             "breaches", "run_id")


def book_risk_history(engine: Engine, portfolio_id: int, *, actor: Actor | str) -> pd.DataFrame:
    """Every stored nightly risk row of portfolio ``portfolio_id``, oldest first, as a frame of
    :data:`BOOK_RISK_HISTORY_COLUMNS` (``as_of`` a date; the numbers floats, NaN when not computed;
    ``compliant`` True/False/None; ``breaches`` an int), if ``actor`` may read the portfolio
    (:class:`~qpo.errors.AccessDenied` otherwise: an advisor reads only their own clients).
    An unknown id is refused with the id."""
    from sqlalchemy.orm import Session

    if isinstance(portfolio_id, bool) or not isinstance(portfolio_id, int):
        raise check.fail(f"portfolio_id must be a portfolio's id (a whole number), got {quote(portfolio_id)}")
    with Session(engine) as s:
        who = actor_for(s, actor)
        portfolio = s.get(ClientPortfolio, portfolio_id)
        if portfolio is None:
            raise check.fail(f"no portfolio with id {quote(portfolio_id)}")
        who.require_read(portfolio)
    r = BookRisk
    q = (select(r.portfolio_id, ClientPortfolio.name, User.email, r.as_of, *[getattr(r, c) for c in RISK_NUMBERS],
                r.compliant, r.breaches, r.run_id)
         .join(ClientPortfolio, ClientPortfolio.id == r.portfolio_id).join(User, User.id == ClientPortfolio.advisor_id)
         .where(r.portfolio_id == portfolio_id).order_by(r.as_of))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=list(BOOK_RISK_HISTORY_COLUMNS))
    for c in RISK_NUMBERS:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    frame["breaches"] = pd.to_numeric(frame["breaches"], errors="coerce").fillna(0).astype(int)
    frame["compliant"] = [None if v is None else bool(v) for v in frame["compliant"]]
    return frame
