"""OCI distribution client: references, credentials, auth, transport, pull and push."""

from __future__ import annotations

from engine.registry.client import RegistryClient, ResolvedImage
from engine.registry.config import Mirror, RegistryConfig, RetryPolicy
from engine.registry.credentials import Credential, Keychain
from engine.registry.reference import InvalidReference, Reference

__all__ = [
    "Credential",
    "InvalidReference",
    "Keychain",
    "Mirror",
    "Reference",
    "RegistryClient",
    "RegistryConfig",
    "ResolvedImage",
    "RetryPolicy",
]
