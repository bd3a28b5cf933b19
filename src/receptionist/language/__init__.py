"""Pure text understanding shared by the local brains and the offline analyzer (no I/O)."""
