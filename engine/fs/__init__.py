"""Rootfs handling: safe paths, layer extraction, the stat-index snapshotter."""
