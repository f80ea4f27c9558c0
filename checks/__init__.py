"""Asset checks (app layer; may import assets/, resources/ and the creditlake library):
failure rate (blocking), quality score, reconciliation, hash uniqueness (quality.py) and
suspicious entity clusters (entities.py)."""
