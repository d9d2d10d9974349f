"""The gateway's public routes (CONTRACT.md §5)."""
