"""xscreen: AI primary screening of international mail on X-ray (shared kernel: settings, errors, CLI)."""

__version__ = "0.1.0"
