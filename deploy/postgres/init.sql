-- The ledger lives in POSTGRES_DB (creditlake); Dagster's instance storage gets its own database.
CREATE DATABASE dagster;
