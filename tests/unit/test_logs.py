"""JSON log lines; access lines without query strings (no personal data in logs)."""

from __future__ import annotations

import json
import logging

from omo.ops.logs import JsonFormatter, log_config


def test_access_lines_drop_the_query_string() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.7:51514", "GET", "/api/v1/members/lookup?phone=0912345678", "1.1", 200), None,
    )  # fmt: skip
    line = json.loads(JsonFormatter().format(record))
    assert line["path"] == "/api/v1/members/lookup" and "0912345678" not in json.dumps(line)
    assert (line["method"], line["status"], line["client"], line["level"]) == (
        "GET", 200, "10.0.0.7", "info",
    )  # fmt: skip


def test_other_lines_and_errors() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("omo.jobs", logging.ERROR, __file__, 1, "pass %s failed",
                                   ("7",), sys.exc_info())  # fmt: skip
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "pass 7 failed" and "ValueError: boom" in line["error"]
    config = log_config()
    assert config["formatters"]["json"]["()"] is JsonFormatter
    assert all(c["handlers"] == ["stdout"] for c in config["loggers"].values())
