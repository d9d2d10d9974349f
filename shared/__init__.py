"""What both services import: settings base, logging, errors, HTTP client factory, API-key check."""
