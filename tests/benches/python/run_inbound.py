"""Drives inbound_handler.handler over the events in a JSON file (a list of API Gateway v2
events), one at a time as one Lambda instance would, and prints one JSON object: per-request
wall latency and this process's CPU time, and the AWS calls made (counted by botocore).

    python3 run_inbound.py EVENTS.json WARMUP
"""

import json
import sys
import time

import inbound_handler

aws_calls = []
for client in (inbound_handler.dynamodb, inbound_handler.sqs):
    client.meta.events.register("before-send", lambda request, **_: aws_calls.append(request.url))


def main():
    events = json.load(open(sys.argv[1]))
    warmup = int(sys.argv[2])
    for event in events[:warmup]:
        inbound_handler.handler(event, None)
    del aws_calls[:]
    latencies_ms = []
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for event in events[warmup:]:
        started = time.perf_counter()
        result = inbound_handler.handler(event, None)
        latencies_ms.append((time.perf_counter() - started) * 1000)
        if result["statusCode"] != 200:
            raise SystemExit(f"the handler answered {result}")
    cpu = time.process_time() - cpu_started
    wall = time.perf_counter() - wall_started
    print(json.dumps({
        "requests": len(latencies_ms),
        "latencies_ms": latencies_ms,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "aws_calls": len(aws_calls),
    }))


main()
