"""Work that happens after the answer: webhook events and scheduled reconciliation, from a table."""
