"""The WHOOP service's HTTP routes; every `/internal/*` route needs `X-API-Key`."""
