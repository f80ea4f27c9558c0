"""Engine-neutral rules: plain data and pure functions (vocabularies, header mapping,
the identity hash) and, beside them, one compiler per processing
backend turning that data into column expressions - sibling modules with the same shape:
polars.py (embedded) and spark.py (scale-out) - plus validation.py (the Pandera model).
"""
