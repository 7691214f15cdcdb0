"""The advisor dashboard's tabs. Each tab is a class built with the dashboard (``tab = Tab(board)``)
that has a ``widget`` and a ``show(name)`` that draws the portfolio ``name``. The board gives
``engine`` (the store), ``actor`` (the :class:`qpo.store.Actor` signed in), ``prices`` (the price
panel, dates x tickers), ``benchmark`` (the S&P 500's daily returns) and ``selected``."""
