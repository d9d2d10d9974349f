"""The WHOOP connection lifecycle: connect, callback, tokens and their refresh, disconnect."""
