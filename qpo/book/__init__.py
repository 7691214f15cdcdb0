"""The client book's domain: a portfolio's strategy (validated JSON), holdings files, rebalance
proposals as trade lists. It sits above the store (which stores and checks access) and uses the
optimizer and the risk engine; drawing lives in :mod:`qpo.reporting`."""
from qpo.book.holdings_file import read_holdings_file
from qpo.book.proposals import accept_rebalance, check_rebalance, propose_rebalance, reject_rebalance
from qpo.book.rebalance import RebalanceProposal, plan_rebalance
from qpo.book.rounding import round_trades
from qpo.book.strategy import Strategy, StrategyError

__all__ = ["RebalanceProposal", "Strategy", "StrategyError", "accept_rebalance", "check_rebalance", "plan_rebalance",
           "propose_rebalance", "read_holdings_file", "reject_rebalance", "round_trades"]
