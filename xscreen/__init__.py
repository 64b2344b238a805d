"""xscreen's kernel: what every layer shares (settings, errors, the records glossary, roles, the health report)."""

__version__ = "0.1.0"
