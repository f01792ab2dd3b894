"""The scheduling rules as pure functions and data, so that tests and the simulations in
`bench/` can pin them: no database, no network, no clock but the one handed in.

May import: the standard library only.
"""

from __future__ import annotations
