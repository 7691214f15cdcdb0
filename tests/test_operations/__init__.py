"""The nightly book's operations: the runs, their records, alerts and their delivery (issue 19)."""
