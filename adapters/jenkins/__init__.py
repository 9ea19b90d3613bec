"""jenkins adapter."""
