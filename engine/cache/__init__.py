"""Layer cache: step keys (`keys`), the registry cache repo (`registry_cache`) and the
`--cache-dir` base-image cache with its warmer (`warm`).

See docs/cache.md for the key and the interface the build orchestration uses.
"""

from __future__ import annotations
