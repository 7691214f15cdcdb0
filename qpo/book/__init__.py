"""The client book's domain: a portfolio's strategy (validated JSON), holdings files, rebalance
proposals as trade lists. It sits above the store (which stores and checks access) and uses the
optimizer and the risk engine; drawing lives in :mod:`qpo.reporting`."""
