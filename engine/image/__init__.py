"""Image formats: OCI/Docker manifests, indexes, configs, layout and docker-archive outputs."""
