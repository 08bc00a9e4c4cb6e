"""Developer tooling shared by the demo command, benchmarks and the test suite.

Nothing here is imported by the product at run time unless a developer feature asks for it;
modules import their (development-only) dependencies lazily.
"""

from __future__ import annotations
