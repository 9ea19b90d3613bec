"""Layer cache: step keys, the cache repo, and the `--cache-dir` base-image cache.

How the build orchestration (engine/build) uses it — the contract:

1. Keys (`engine.cache.keys`), for every instruction of a stage, in order:
       parent = base_key(base_manifest_digest, str(platform))   # FROM scratch: None;
                                                                  # FROM <stage>: its final key
       key = step_key(parent, expanded_text,
                      run_env=<build args in scope + ENV> if RUN else None,
                      sources=hash_sources(context, srcs, owner=chown_spec, excluded=ignored)
                              if COPY/ADD from the context else
                              stage_source_digest(<stage final key or image digest>, paths)
                              if COPY --from else None)
       parent = key
   Metadata instructions (ENV, WORKDIR, ...) take part in the chain; only instructions for
   which `cache.caches(keyword)` is true are looked up and stored.

2. `cache = open_step_cache(options, client, platform=...)` (None unless --cache). Then:
       hits = cache.lookup_many([keys of cacheable steps])   # one manifest GET each, parallel
   Keep going after a miss: a later step may still hit (keys do not depend on layers).

3. A hit (`CachedLayer`) is used AS IS: append `hit.layer` (descriptor) and `hit.diff_id` to
   the image, `hit.history` to the history, apply `hit.config_delta`. Do not re-snapshot it,
   so its whiteouts survive. When pushing the final image, mount the blob:
       client.push_blob(dest_repo, hit.layer, path=None, mount_from=hit.repository)
   (for an `oci:` cache `hit.repository` is None: `cache.fetch_layer(hit, path)` first).
   The layer media type may be converted between the OCI and Docker gzip types: same bytes.

4. A FULLY CACHED BUILD MUST NOT EXTRACT A FILESYSTEM. Materialise the rootfs lazily: only
   when a step misses, extract the base image and the layers before it (cached ones via
   `cache.fetch_layer(hit, tmp)` then engine.fs.extract_layer), then run the step.

5. After a cacheable step ran: `cache.store(key, layer_blob_or_None, history=entry,
   config_delta=changed_config_fields, mount_from=dest_repo)` — queued, returns at once;
   keep the blob file until `cache.close()` (which flushes) at the end of the build.
   --no-push-cache makes store a no-op. Cache failures are warnings, never build failures.

6. --cache-dir (`engine.cache.warm`): before pulling a base image,
       warm = local_base_image(options.cache_dir, ref, platform=platform,
                               ttl=options.cache_ttl, digest=<digest the registry serves, if
                               checked (kaniko does a HEAD); None trusts the warmed tag>)
   gives `.manifest`, `.manifest_digest`, `.config_bytes`, `.layers` and `.blob_path(desc)`
   (local files to extract or push from), or None: pull as usual. Never raises for a missing
   or unusable cache dir. Several builds may share one cache dir at once.

Flags: --cache, --cache-repo (default `<first destination repository>/cache`, or
`oci:/path`), --cache-ttl, --cache-run-layers (default true), --cache-copy-layers (default
false), --no-push-cache, --compressed-caching (accepted; brickyard streams every layer through
a file and never holds one in memory, so there is nothing to trade).
"""

from __future__ import annotations

from engine.cache.keys import base_key, hash_file, hash_sources, stage_source_digest, step_key
from engine.cache.registry_cache import (
    CacheBackend,
    CachedLayer,
    LayoutBackend,
    RegistryBackend,
    StepCache,
    cache_repo_for,
    default_cache_repo,
    open_step_cache,
)
from engine.cache.warm import WarmImage, local_base_image

__all__ = [
    "CacheBackend",
    "CachedLayer",
    "LayoutBackend",
    "RegistryBackend",
    "StepCache",
    "WarmImage",
    "base_key",
    "cache_repo_for",
    "default_cache_repo",
    "hash_file",
    "hash_sources",
    "local_base_image",
    "open_step_cache",
    "stage_source_digest",
    "step_key",
]
