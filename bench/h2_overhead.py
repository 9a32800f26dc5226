"""What the ``h2`` library alone costs an HTTP/2 server per small request: no socket, no loop.

    bench/.venv/bin/python bench/h2_overhead.py [--requests 10000] [--rounds 5] [--no-inbound-validation]

A client and a server ``H2Connection`` talk in memory. Per request the client sends
``GET /json`` (HEADERS with END_STREAM). The server is timed while it receives that
(``receive_data``) and while it answers: ``send_headers`` (:status 200, content-type,
content-length), ``send_data`` with the 23-byte body and END_STREAM, then ``data_to_send``.
The client's side (and its WINDOW_UPDATEs reaching the server) is not timed. The server's
H2Configuration is rat_engine's (rat_engine/server/h2_connection.py): no outbound validation or
normalisation, request headers validated. Run it pinned (``taskset -c 0``) on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import h2.config
import h2.connection
import h2.events

REQUEST = [
    (b":method", b"GET"),
    (b":path", b"/json"),
    (b":scheme", b"http"),
    (b":authority", b"127.0.0.1:8000"),
    (b"user-agent", b"h2load nghttp2/1.52.0"),
]
BODY = b'{"hello":"world","n":1}'
RESPONSE = [(b":status", b"200"), (b"content-type", b"application/json"), (b"content-length", b"23")]


def pair(validate_inbound: bool) -> tuple[h2.connection.H2Connection, h2.connection.H2Connection]:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            split_outbound_cookies=False,
            validate_inbound_headers=validate_inbound,
            normalize_inbound_headers=validate_inbound,
        )
    )
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    return client, server


def one_round(requests: int, validate_inbound: bool) -> tuple[float, float]:
    """Server seconds spent receiving and answering ``requests`` requests."""
    client, server = pair(validate_inbound)
    receiving = answering = 0.0
    for _ in range(requests):
        stream_id = client.get_next_available_stream_id()
        client.send_headers(stream_id, REQUEST, end_stream=True)
        data = client.data_to_send()
        t0 = time.perf_counter()
        server.receive_data(data)
        t1 = time.perf_counter()
        server.send_headers(stream_id, RESPONSE)
        server.send_data(stream_id, BODY, end_stream=True)
        out = server.data_to_send()
        t2 = time.perf_counter()
        receiving += t1 - t0
        answering += t2 - t1
        for event in client.receive_data(out):
            if isinstance(event, h2.events.DataReceived):
                client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        server.receive_data(client.data_to_send())
    return receiving, answering


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-inbound-validation", action="store_true", help="validate_inbound_headers=False too")
    args = p.parse_args()
    if not (1 <= args.requests <= 1_000_000 and 1 <= args.rounds <= 50):
        p.error("bounded runs only: --requests 1..1000000, --rounds 1..50")
    rounds = [one_round(args.requests, not args.no_inbound_validation) for _ in range(args.rounds)]
    us = 1e6 / args.requests
    receive = statistics.median(r[0] * us for r in rounds)
    answer = statistics.median(r[1] * us for r in rounds)
    total = statistics.median((r[0] + r[1]) * us for r in rounds)
    print(
        f"h2 {h2.__version__}, server side, median of {args.rounds} x {args.requests} requests"
        f"{' (no inbound validation)' if args.no_inbound_validation else ''}:\n"
        f"  receive the request (HEADERS): {receive:6.1f} us\n"
        f"  answer (head + body, framed):  {answer:6.1f} us\n"
        f"  per request:                   {total:6.1f} us"
    )


if __name__ == "__main__":
    main()
