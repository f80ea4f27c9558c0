"""Start-up cost: keep optional packages out of a library's import-time probing.

pandera's top-level package imports pandas (and, through it, pyspark.pandas and hypothesis)
whenever they are installed, although the polars backend needs none of them: ~0.8 s of every
`creditlake ingest`. pandera supports a polars-only install, so hiding those packages while it
is imported gives that configuration without changing what is installed.

pyarrow imports pandas (~0.35 s) the first time any array is built, only to tell whether its
input is a pandas object; `arrow_without_pandas()` lets it find pandas absent. Nothing in
creditlake hands pyarrow pandas objects, and pandas objects still convert (`to_pandas()`,
`from_pandas()`, `pa.array(series)` import or use pandas when called); whoever needs pandas
(Splink) imports it then.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _Hide(importlib.abc.MetaPathFinder):
    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname.split(".", 1)[0] in self.names:
            # the message pandera recognizes as "pandas is not installed"
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


@contextmanager
def hidden_modules(*names: str) -> Iterator[None]:
    """Within the block, importing any of `names` (not yet imported) fails as if absent."""
    hide = frozenset(n for n in names if n not in sys.modules)
    finder = _Hide(hide)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def arrow_without_pandas() -> None:
    """Let pyarrow decide (it does so once per process) that pandas is not installed, unless
    pandas is already imported. Entry points call it before any Arrow work."""
    if "pandas" in sys.modules:
        return
    with hidden_modules("pandas"):
        import pyarrow as pa

        pa.array([0])  # the first array built makes pyarrow look for pandas
