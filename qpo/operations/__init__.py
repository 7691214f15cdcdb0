"""Operations: the nightly book (valuation and risk of every portfolio on Dask), alert delivery."""
