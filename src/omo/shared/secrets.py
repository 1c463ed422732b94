"""The key that signs session cookies and member-card links."""

from __future__ import annotations

import secrets
from pathlib import Path

from omo.settings import Settings


def secret_key(settings: Settings) -> str:
    """The configured key, else one made once and kept beside the database (0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path("var/secret.key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
