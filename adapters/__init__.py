"""CI adapters: read a CI's environment, produce engine options, render templates."""
