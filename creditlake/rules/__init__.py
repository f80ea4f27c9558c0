"""Engine-neutral rules: plain data and pure functions.

The Polars adapter (creditlake/engines/polars.py) and the Spark adapter
(creditlake/engines/spark.py) compile the same data into column expressions.
"""
