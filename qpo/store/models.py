"""SQLAlchemy 2 models. The schema itself is created by the Alembic migrations beside this file."""
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


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
