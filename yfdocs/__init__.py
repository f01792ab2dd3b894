"""The `yfdocs` command: its commands, the tables and panels it prints, and the demo.

The only room that imports `sandbox/` (for `yfdocs sandbox` and `yfdocs demo`). Settings are
read here, at the entry point, and passed down. May import every other room.
"""

from __future__ import annotations
