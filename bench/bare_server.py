"""The least a Python HTTP server can do for a sale: a reference for bench/checkout.py.

A raw ASGI app (no framework, no validation, no business rules, no access log) on the same
uvicorn with the same HTTP parser and TCP_NODELAY as `omo serve`, one database connection per
process, used from the event loop. A POST reads the sale's JSON and makes the raw transaction's
writes (checkout.RAW_SQLITE / RAW_POSTGRES: on PostgreSQL the pgbench script's statements, the
member locked first), then answers 201 with the order id; GET /livez answers at once.

What it leaves out is what a checkout is for: the API key, pricing, the idempotency look-up,
the tier and the points rules. Its rate is how far Python's HTTP stack alone lets the raw
transaction go on this machine; the share of it `omo serve` reaches is what the framework and
the loyalty rules cost.

    BARE_DATABASE_URL=sqlite:///… python bench/bare_server.py PORT WORKERS
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
from typing import Any

from checkout import RAW_POSTGRES, RAW_SQLITE

URL = os.environ.get("BARE_DATABASE_URL", "")


class _Writer:
    """The raw transaction on one connection: SQLite's sqlite3, or psycopg."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            self.conn: Any = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA busy_timeout=5000")
        else:
            import psycopg

            self.conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))

    def sale(self, member: int, external_id: str) -> int:
        values = {"m": member, "e": external_id}
        if self.sqlite:
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                values["o"] = cur.execute(RAW_SQLITE[0], values).fetchone()[0]
                values["k"] = f"raw:{values['o']}"
                for statement in RAW_SQLITE[1:]:
                    cur.execute(statement, values)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            return int(values["o"])
        with self.conn.transaction():
            self.conn.execute(RAW_POSTGRES[0], values)
            values["o"] = self.conn.execute(RAW_POSTGRES[1], values).fetchone()[0]
            values["k"] = f"raw:{values['o']}"
            for statement in RAW_POSTGRES[2:]:
                self.conn.execute(statement, values)
        return int(values["o"])


_writer: _Writer | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _writer
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _writer = _Writer(URL)
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] == "GET":
        status, out = 200, b'{"status":"alive"}'
    else:
        assert _writer is not None
        sale = json.loads(body)
        order = _writer.sale(int(sale["member_id"]), str(sale["external_id"]))
        status, out = 201, json.dumps({"order_id": order}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": out})


def main() -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    port, workers = int(sys.argv[1]), int(sys.argv[2])
    config = uvicorn.Config(
        "bare_server:app", host="127.0.0.1", port=port, workers=workers, access_log=False
    )
    sock = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as `omo serve` does
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        Multiprocess(config, sockets=[sock]).run()


if __name__ == "__main__":
    main()
