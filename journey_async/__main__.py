"""
``python -m journey_async``: the ``journey-async`` command, for when the
console script is not on ``PATH``.

.. versionadded:: 0.1.0
"""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
