"""`make bench`: measured side by side in one run, loopback only; writes bench/RESULTS.md."""
