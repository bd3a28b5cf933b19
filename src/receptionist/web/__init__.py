"""The owner's window: the REST API (and, to come, the dashboard), behind tenant-scoped keys."""
