"""gitlab adapter."""
