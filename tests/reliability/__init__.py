"""The reliability suite: bad files, numbers, stores and processes under fault (issue 16)."""
