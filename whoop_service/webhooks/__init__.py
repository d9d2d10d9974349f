"""WHOOP webhooks: verified, stored once per trace id, processed from the job table."""
