"""SQLAlchemy 2 models. The schema itself is created by the Alembic migrations beside this file.

Every column a caller sets is checked when it is set (``@validates``, the rules of
:mod:`qpo.store._inputs`), whether through the repository functions or by building a model
directly: a refused value raises :class:`~qpo.errors.StoreError` before anything reaches the
session, and the schema's own constraints stay as the last line behind them."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from qpo.store import _inputs as check


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class User(Base):
    """A person who uses the workbench: an advisor (owns client portfolios), a researcher (reads
    every portfolio, changes none) or an admin (everything, people included). The table keeps its
    first name, ``advisors``; :data:`Advisor` is the same class. A password, when set, is kept as an
    argon2 hash (:mod:`qpo.store.passwords`), never in clear."""

    __tablename__ = "advisors"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32), default="advisor")
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    portfolios: Mapped[list[ClientPortfolio]] = relationship(back_populates="advisor")

    __table_args__ = (CheckConstraint("role in ('advisor', 'researcher', 'admin')", name="ck_advisor_role"),)

    @validates("email")
    def _email(self, _key, value):
        return check.email(value, "user e-mail")

    @validates("name")
    def _name(self, _key, value):
        return check.label(value, "user name")

    @validates("role")
    def _role(self, _key, value):
        return check.role(value)

    @validates("password_hash")
    def _hash(self, _key, value):
        if value is not None and not (isinstance(value, str) and value.startswith("$argon2")):
            raise check.fail("password_hash must be an argon2 hash (qpo.store.passwords.hash_password), never a password")
        return value


#: the first name of :class:`User`, kept for callers that know it
Advisor = User


class ClientPortfolio(Base):
    """A client's portfolio, managed by one advisor. Its holdings and cash are not columns: they
    are derived from its ledger (:class:`Transaction`); its strategy is validated JSON with a
    schema version (:class:`qpo.book.Strategy`), None for the default strategy."""

    __tablename__ = "portfolios"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    client_name: Mapped[str] = mapped_column(String(255))
    advisor_id: Mapped[int] = mapped_column(ForeignKey("advisors.id"))
    base_currency: Mapped[str] = mapped_column(String(3), default="USD")
    benchmark: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    account: Mapped[str | None] = mapped_column(String(64), default=None)
    strategy: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    advisor: Mapped[User] = relationship(back_populates="portfolios")
    transactions: Mapped[list[Transaction]] = relationship(back_populates="portfolio", cascade="all, delete-orphan",
                                                           order_by="(Transaction.trade_date, Transaction.id)")
    proposals: Mapped[list[Proposal]] = relationship(back_populates="portfolio", cascade="all, delete-orphan")

    @validates("name", "client_name")
    def _names(self, key, value):
        return check.label(value, "portfolio name" if key == "name" else "client name")

    @validates("base_currency")
    def _currency(self, _key, value):
        return check.currency(value)

    @validates("benchmark")
    def _benchmark(self, _key, value):
        return check.optional_label(value, "benchmark", check.LABEL64)

    @validates("account")
    def _account(self, _key, value):
        return check.optional_label(value, "account", check.LABEL64)

    @validates("description")
    def _description(self, _key, value):
        return check.optional_text(value, "description")

    @validates("strategy")
    def _strategy(self, _key, value):
        return check.strategy_json(value)


class Transaction(Base):
    """One entry of a portfolio's ledger, the truth its holdings and cash are derived from.

    ``kind``: ``buy`` / ``sell`` (``quantity`` > 0 shares of ``ticker`` at ``price``, plus ``fees``),
    ``deposit`` / ``withdrawal`` / ``fee`` (cash ``amount`` > 0), ``dividend`` (cash ``amount`` of
    ``ticker``), ``transfer_in`` / ``transfer_out`` (shares delivered in kind, no cash; ``price``
    is an optional cost basis). Cash: buy -(q p + fees), sell +(q p - fees), deposit and dividend
    +amount, withdrawal and fee -amount (and -fees)."""

    __tablename__ = "transactions"
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    trade_date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    ticker: Mapped[str | None] = mapped_column(String(16))
    quantity: Mapped[float | None] = mapped_column(Float)
    price: Mapped[float | None] = mapped_column(Float)
    fees: Mapped[float] = mapped_column(Float, default=0.0)
    amount: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("proposals.id", ondelete="SET NULL"))
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    portfolio: Mapped[ClientPortfolio] = relationship(back_populates="transactions")

    __table_args__ = (
        CheckConstraint(f"kind in ({', '.join(repr(k) for k in check.TRANSACTION_KINDS)})", name="ck_transaction_kind"),
        CheckConstraint("quantity IS NULL OR quantity > 0 OR (kind = 'split' AND quantity <> 0)",
                        name="ck_transaction_quantity_positive"),
        CheckConstraint("price IS NULL OR price > 0", name="ck_transaction_price_positive"),
        CheckConstraint("fees >= 0", name="ck_transaction_fees_nonnegative"),
        CheckConstraint("amount IS NULL OR amount > 0", name="ck_transaction_amount_positive"),
        Index("ix_transactions_portfolio_date", "portfolio_id", "trade_date"),
        Index("uq_transactions_split", "portfolio_id", "ticker", "trade_date", unique=True,
              sqlite_where=text("kind = 'split'"), postgresql_where=text("kind = 'split'")),  # a split booked once
        {"sqlite_autoincrement": True},
    )

    @validates("trade_date")
    def _trade_date(self, _key, value):
        return check.trade_day(value, "trade date")

    @validates("kind")
    def _kind(self, _key, value):
        return check.transaction_kind(value)

    @validates("ticker")
    def _ticker(self, _key, value):
        return None if value is None else check.ticker(value, "transaction ticker")

    @validates("quantity", "price", "amount")
    def _positive(self, key, value):
        if value is None:
            return None
        if key == "quantity" and self.kind == "split":  # the change in the shares held: negative for a reverse split
            value = check.money(value, "transaction quantity", "any")
            if value == 0.0:
                raise check.fail("the quantity of a split (the change in the shares held) must not be 0")
            return value
        return check.money(value, f"transaction {key}", "positive")

    @validates("fees")
    def _fees(self, _key, value):
        return check.money(value, "transaction fees (cost)", "nonnegative")

    @validates("note")
    def _note(self, _key, value):
        return check.optional_text(value, "transaction note")

    @validates("created_by")
    def _created_by(self, _key, value):
        return check.optional_label(value, "created_by", 255)


class Proposal(Base):
    """A rebalance proposal: the trades that take a portfolio to its strategy's target, with the
    numbers before and after, built on the prices of ``prices_as_of`` and the ledger as it stood
    at ``ledger_version`` (its last transaction id). ``status``: open, accepted or rejected; only an
    open proposal can be decided, once."""

    __tablename__ = "proposals"
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="open")
    as_of: Mapped[dt.date] = mapped_column(Date)
    prices_as_of: Mapped[dt.date] = mapped_column(Date)
    ledger_version: Mapped[int] = mapped_column(Integer, default=0)
    strategy: Mapped[dict[str, Any]] = mapped_column(JSON)
    trades: Mapped[list[Any]] = mapped_column(JSON)
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    optimization_run_id: Mapped[int | None] = mapped_column(ForeignKey("optimization_runs.id", ondelete="SET NULL"))
    portfolio: Mapped[ClientPortfolio] = relationship(back_populates="proposals")

    __table_args__ = (
        CheckConstraint("status in ('open', 'accepted', 'rejected')", name="ck_proposal_status"),
        Index("ix_proposals_portfolio_status", "portfolio_id", "status"),
        {"sqlite_autoincrement": True},
    )

    @validates("as_of", "prices_as_of")
    def _dates(self, key, value):
        return check.day(value, key)

    @validates("strategy", "target", "summary", "result", "parameters")
    def _json(self, key, value):
        return check.parameters(value, f"proposal {key}")

    @validates("trades")
    def _trades(self, _key, value):
        if not isinstance(value, list):
            raise check.fail(f"proposal trades must be a list of trades, got {check.quote(value)}")
        return check.parameters({"trades": value}, "proposal")["trades"]

    @validates("reason")
    def _reason(self, _key, value):
        return check.optional_text(value, "reason")


class AuditEntry(Base):
    """One row of the audit trail: when, who (the actor's e-mail and role), what (``action`` on an
    ``entity``), and the entity before and after, as JSON. Append-only: the repository never
    updates or deletes a row, and on PostgreSQL a trigger refuses UPDATE and DELETE. It has no
    foreign keys, so it outlives what it describes (a deleted portfolio, user or proposal)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    portfolio_id: Mapped[int | None] = mapped_column(Integer)
    portfolio: Mapped[str | None] = mapped_column(String(255))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_portfolio_at", "portfolio_id", "at"),)


class OptimizationRun(Base):
    """One call of the optimizer: inputs, outcome, weights."""

    __tablename__ = "optimization_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int | None] = mapped_column(ForeignKey("portfolios.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    objective: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(32))
    solver: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    expected_return: Mapped[float | None] = mapped_column(Float)
    volatility: Mapped[float | None] = mapped_column(Float)
    sharpe: Mapped[float | None] = mapped_column(Float)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fallback_reason: Mapped[str | None] = mapped_column(Text)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))

    @validates("objective", "method", "solver", "status")
    def _labels(self, key, value):
        return check.label(value, key, check.LABEL32 if key in ("method", "status") else check.LABEL64)

    @validates("expected_return", "volatility", "sharpe")
    def _statistics(self, key, value):
        return check.statistic(value, key)

    @validates("weights")
    def _weights(self, _key, value):
        return check.weights(value)

    @validates("parameters")
    def _parameters(self, _key, value):
        return check.parameters(value)

    @validates("fallback_reason")
    def _reason(self, _key, value):
        return check.optional_text(value, "fallback reason")

    @validates("mlflow_run_id")
    def _run_id(self, _key, value):
        return check.optional_label(value, "mlflow_run_id", check.LABEL64)


class RiskMetric(Base):
    """One risk number of one portfolio as of one date (e.g. from the daily report)."""

    __tablename__ = "risk_metrics"
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("portfolio_id", "as_of", "metric", "mlflow_run_id", name="uq_risk_metric"),
                      Index("ix_risk_metrics_portfolio_as_of", "portfolio_id", "as_of"))

    @validates("as_of")
    def _as_of(self, _key, value):
        return check.day(value, "as_of")

    @validates("metric")
    def _metric(self, _key, value):
        return check.label(value, "metric name", check.LABEL64)

    @validates("value")
    def _value(self, _key, value):
        return check.amount(value, f"metric {check.quote(self.metric, 30)} value" if self.metric else "metric value")

    @validates("mlflow_run_id")
    def _run_id(self, _key, value):
        return check.optional_label(value, "mlflow_run_id", check.LABEL64)


class MarketBar(Base):
    """One daily bar of one ticker (``market_data``): one row per (ticker, date), so loading the
    same bars again replaces them and never duplicates (:mod:`qpo.store.market_data`)."""

    __tablename__ = "market_data"
    ticker: Mapped[str] = mapped_column(String(32), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    open: Mapped[float | None] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)
    low: Mapped[float | None] = mapped_column(Float)
    close: Mapped[float | None] = mapped_column(Float)
    adjusted_close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float | None] = mapped_column(Float)
    dividend: Mapped[float] = mapped_column(Float, default=0.0)
    split: Mapped[float] = mapped_column(Float, default=1.0)
    source: Mapped[str] = mapped_column(String(32), default="file")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_market_data_date", "date"),)


class SectorOf(Base):
    """The sector of one ticker of the book's universe (``sectors``, :mod:`qpo.store.sectors`)."""

    __tablename__ = "sectors"
    ticker: Mapped[str] = mapped_column(String(32), primary_key=True)
    sector: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32), default="file")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OpsRun(Base):
    """One operations run (the valuation or the risk run of one date): RUNNING, then FINISHED or
    FAILED with its error."""

    __tablename__ = "ops_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    portfolios: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_ops_runs_kind_as_of", "kind", "as_of"),)


class Valuation(Base):
    """Market value, cash and returns of one portfolio on one date (the 17:00 valuation)."""

    __tablename__ = "valuations"
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    market_value: Mapped[float | None] = mapped_column(Float)
    cash: Mapped[float] = mapped_column(Float)
    holdings_value: Mapped[float | None] = mapped_column(Float)
    daily_return: Mapped[float | None] = mapped_column(Float)
    mtd_return: Mapped[float | None] = mapped_column(Float)
    ytd_return: Mapped[float | None] = mapped_column(Float)
    inception_return: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    unpriced: Mapped[Any] = mapped_column(JSON, nullable=True)
    stale: Mapped[Any] = mapped_column(JSON, nullable=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ops_runs.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("portfolio_id", "as_of", name="uq_valuation_portfolio_as_of"),
                      Index("ix_valuations_as_of", "as_of"))


class BookRisk(Base):
    """The risk numbers and compliance of one portfolio on one date (the 18:00 risk run); the
    stress results and every compliance check are in ``details``."""

    __tablename__ = "book_risk"
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    volatility: Mapped[float | None] = mapped_column(Float)
    var_historical: Mapped[float | None] = mapped_column(Float)
    cvar_historical: Mapped[float | None] = mapped_column(Float)
    var_parametric: Mapped[float | None] = mapped_column(Float)
    cvar_parametric: Mapped[float | None] = mapped_column(Float)
    beta: Mapped[float | None] = mapped_column(Float)
    max_drawdown: Mapped[float | None] = mapped_column(Float)
    worst_stress: Mapped[float | None] = mapped_column(Float)
    compliant: Mapped[bool | None] = mapped_column(Boolean)
    breaches: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ops_runs.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("portfolio_id", "as_of", name="uq_book_risk_portfolio_as_of"),
                      Index("ix_book_risk_as_of", "as_of"))


class Alert(Base):
    """One breach of one portfolio's limit while it lasts: ``new`` when first seen, ``acknowledged``
    by a person, ``resolved`` automatically when a later run passes the check."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    check_name: Mapped[str] = mapped_column(String(128))
    value: Mapped[float | None] = mapped_column(Float)
    limit_value: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="new")
    message: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[dt.date] = mapped_column(Date)
    last_seen: Mapped[dt.date] = mapped_column(Date)
    resolved_on: Mapped[dt.date | None] = mapped_column(Date)
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_alerts_portfolio_check", "portfolio_id", "check_name"), Index("ix_alerts_state", "state"))
