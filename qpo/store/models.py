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
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from qpo.store import _inputs as check


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class Advisor(Base):
    """A user of the workbench: an advisor (or researcher) who owns client portfolios."""

    __tablename__ = "advisors"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32), default="advisor")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    portfolios: Mapped[list[ClientPortfolio]] = relationship(back_populates="advisor")

    __table_args__ = (CheckConstraint("role in ('advisor', 'researcher', 'admin')", name="ck_advisor_role"),)

    @validates("email")
    def _email(self, _key, value):
        return check.email(value)

    @validates("name")
    def _name(self, _key, value):
        return check.label(value, "advisor name")

    @validates("role")
    def _role(self, _key, value):
        return check.role(value)


class ClientPortfolio(Base):
    """A client's portfolio, managed by one advisor."""

    __tablename__ = "portfolios"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    client_name: Mapped[str] = mapped_column(String(255))
    advisor_id: Mapped[int] = mapped_column(ForeignKey("advisors.id"))
    base_currency: Mapped[str] = mapped_column(String(3), default="USD")
    benchmark: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    advisor: Mapped[Advisor] = relationship(back_populates="portfolios")
    holdings: Mapped[list[Holding]] = relationship(back_populates="portfolio", cascade="all, delete-orphan",
                                                   order_by="Holding.ticker")
    transactions: Mapped[list[Transaction]] = relationship(back_populates="portfolio",
                                                           cascade="all, delete-orphan")

    @validates("name", "client_name")
    def _names(self, key, value):
        return check.label(value, "portfolio name" if key == "name" else "client name")

    @validates("base_currency")
    def _currency(self, _key, value):
        return check.currency(value)

    @validates("benchmark")
    def _benchmark(self, _key, value):
        return check.optional_label(value, "benchmark", check.LABEL64)

    @validates("description")
    def _description(self, _key, value):
        return check.optional_text(value, "description")


class Holding(Base):
    """Shares of one ticker held in a portfolio."""

    __tablename__ = "holdings"
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    ticker: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[float] = mapped_column(Float)
    portfolio: Mapped[ClientPortfolio] = relationship(back_populates="holdings")

    __table_args__ = (
        UniqueConstraint("portfolio_id", "ticker", name="uq_holding_ticker"),
        CheckConstraint("quantity > 0", name="ck_holding_quantity_positive"),
    )

    @validates("ticker")
    def _ticker(self, _key, value):
        return check.ticker(value, "holding ticker")

    @validates("quantity")
    def _quantity(self, _key, value):
        return check.amount(value, "holding quantity (shares)", "positive")


class Transaction(Base):
    """A trade: ``quantity`` > 0 buys, < 0 sells, at ``price`` per share, plus ``fees``."""

    __tablename__ = "transactions"
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    trade_date: Mapped[dt.date] = mapped_column(Date)
    ticker: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    fees: Mapped[float] = mapped_column(Float, default=0.0)
    portfolio: Mapped[ClientPortfolio] = relationship(back_populates="transactions")

    __table_args__ = (
        CheckConstraint("quantity <> 0", name="ck_transaction_quantity_nonzero"),
        CheckConstraint("price > 0", name="ck_transaction_price_positive"),
        CheckConstraint("fees >= 0", name="ck_transaction_fees_nonnegative"),
    )

    @validates("trade_date")
    def _trade_date(self, _key, value):
        return check.day(value, "trade date")

    @validates("ticker")
    def _ticker(self, _key, value):
        return check.ticker(value, "transaction ticker")

    @validates("quantity", "price", "fees")
    def _amounts(self, key, value):
        sign = {"quantity": "nonzero", "price": "positive", "fees": "nonnegative"}[key]
        return check.amount(value, f"transaction {key}", sign)


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
