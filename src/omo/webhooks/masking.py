"""A receiver's URL as OMO shows it (pure): a password in it, and the values of query
parameters named like a credential (token, key, secret, signature, password, auth), replaced by
***. Posts go to the URL as it was given; only what is shown and logged is masked."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_NAME = re.compile(r"token|key|secret|sig|pass|auth|code", re.IGNORECASE)


def masked(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # refused at PUT; if one is ever stored, show none of it
        return MASK
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{port}" if port else "")
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_NAME.search(k) for k, _ in pairs):
            query = urlencode(
                [(k, MASK if _SECRET_NAME.search(k) else v) for k, v in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
