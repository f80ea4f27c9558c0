"""Asset checks: failure rate (blocking), quality score, reconciliation, hash uniqueness."""
