#!/usr/bin/env python3
"""Scrapes a speechllm-server metrics port while other threads flood it with connections.

Measures whether Prometheus still gets through when clients open connections to the metrics port
as fast as they can and send nothing (docs/benchmarks.md, "Metrics port under a connection
flood"). Standard library only.

  tools/ops/metrics_flood.py PORT [--flooders 2] [--scrapes 20] [--interval_s 0.1]

Prints one line: how many scrapes got their reply, and why the others failed.
"""
import argparse
import socket
import threading
import time
import urllib.request


def flood(port, stop):
    """Opens non-blocking connections to `port` until `stop` is set; keeps the last 100 or so."""
    sockets = []
    while not stop.is_set():
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            pass  # EINPROGRESS, or refused: both count as an attempt
        sockets.append(s)
        if len(sockets) > 200:
            for old in sockets[:100]:
                old.close()
            sockets = sockets[100:]
    for s in sockets:
        s.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="the server's --metrics_listen port")
    parser.add_argument("--flooders", type=int, default=2, help="threads opening connections")
    parser.add_argument("--scrapes", type=int, default=20, help="GET /metrics requests to make")
    parser.add_argument("--interval_s", type=float, default=0.1, help="pause between scrapes")
    args = parser.parse_args()
    stop = threading.Event()
    threads = [threading.Thread(target=flood, args=(args.port, stop)) for _ in range(args.flooders)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the flood is under way
    ok, failures = 0, {}
    for _ in range(args.scrapes):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{args.port}/metrics", timeout=3).read()
            ok += 1
        except Exception as error:  # pylint: disable=broad-except
            failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
        time.sleep(args.interval_s)
    stop.set()
    for t in threads:
        t.join()
    print(f"scrapes through: {ok} of {args.scrapes}; failed: {failures or 'none'}")


if __name__ == "__main__":
    main()
