"""Names shared by every rendered template."""

from __future__ import annotations

# The executor image the templates run (it must put `brickyard` and `executor` on PATH).
BUILDER_IMAGE = "ghcr.io/brickyard-build/brickyard:0.1.0"
# Where the rendered pods mount the docker config secret (DOCKER_CONFIG points here).
DOCKER_CONFIG_DIR = "/brickyard/.docker"
# The catalog resource path used in the README and the component's self-test.
COMPONENT_NAME = "brickyard"
