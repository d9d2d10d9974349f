"""The only code that knows WHOOP's wire format: OAuth, the data API client, errors."""
