"""A TCP proxy that holds each chunk it forwards for a fixed time: a database across a network,
on a machine where `tc netem` is not available (containers without the kernel module).

Each connection gets two threads, one per direction; a chunk read is sent on after `delay_s`,
so a round trip costs about twice that. It stands in for latency, not for bandwidth; the
proxy runs in a process of its own (`spawned`), so that its threads do not wait for the GIL of
the process being measured; it costs some CPU still, which is why the benchmarks use it for
time in process at one client, not for rates under load.

    python bench/delay_proxy.py TARGET_PORT DELAY_S   # prints the port it listens on
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time


class DelayProxy:
    def __init__(self, target: tuple[str, int], delay_s: float) -> None:
        self.target, self.delay_s = target, delay_s
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                time.sleep(self.delay_s)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()


def spawned(target_port: int, delay_s: float) -> tuple[subprocess.Popen[str], int]:
    """A DelayProxy to 127.0.0.1:target_port in a process of its own, and its port."""
    proc = subprocess.Popen(
        [sys.executable, __file__, str(target_port), str(delay_s)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


if __name__ == "__main__":
    proxy = DelayProxy(("127.0.0.1", int(sys.argv[1])), float(sys.argv[2]))
    print(proxy.port, flush=True)
    threading.Event().wait()
