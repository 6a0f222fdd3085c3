"""The items store (SQLite through sqlite-utils): the only writer of the items table.

sqlite-utils imports pandas and numpy whenever they are installed (chDB installs them), to accept
their types in inserts, which this store never passes. That import alone added about 80 MB to the
resident memory of every process that opened a store (and 0.4 s to its start-up), so sqlite-utils is
imported here with both hidden; either imports normally afterwards, for anyone who wants it.
"""

import sys

_HIDDEN = ("pandas", "numpy")
_hidden_now = [name for name in _HIDDEN if name not in sys.modules]
try:
    for _name in _hidden_now:
        sys.modules[_name] = None  # type: ignore[assignment]  # makes `import pandas` raise ImportError
    import sqlite_utils  # noqa: F401
finally:
    for _name in _hidden_now:
        del sys.modules[_name]
