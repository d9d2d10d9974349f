"""Keeping the WHOOP tables fresh: planning (pure), mapping (pure), the engine (I/O)."""
