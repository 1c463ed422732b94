"""A TCP proxy between a client and a server, for tests and benchmarks: it counts round trips
and can hold what it forwards, to stand in for a network (`tc netem` needs a kernel module these
containers lack).

A round trip is counted each time the client sends after the server has answered: a pipeline
of statements sent at once and answered at once is one, as on the wire. With `delay_s`, every
chunk waits that long before it goes on, so a round trip costs about twice that — latency, not
bandwidth. Each connection has a thread per direction; `spawned` runs the proxy in a process of
its own, so that its threads do not wait for the GIL of the process being measured.

    python -m omo.testing.tcpproxy TARGET_PORT DELAY_S   # prints the port it listens on
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time


class TcpProxy:
    def __init__(self, target: tuple[str, int], *, delay_s: float = 0.0) -> None:
        self.target, self.delay_s = target, delay_s
        self.round_trips = 0
        self._answered = True  # the server spoke last (or nobody has yet)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:  # the server is down: so is this connection, as without a proxy
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, asking: bool) -> None:
        try:
            while chunk := source.recv(65536):
                with self._lock:
                    if asking and self._answered:
                        self.round_trips += 1
                    self._answered = not asking
                if self.delay_s:
                    time.sleep(self.delay_s)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


def spawned(target_port: int, delay_s: float) -> tuple[subprocess.Popen[str], int]:
    """A delaying TcpProxy to 127.0.0.1:target_port in a process of its own, and its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "omo.testing.tcpproxy", str(target_port), str(delay_s)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


if __name__ == "__main__":
    proxy = TcpProxy(("127.0.0.1", int(sys.argv[1])), delay_s=float(sys.argv[2]))
    print(proxy.port, flush=True)
    threading.Event().wait()
