"""A small CloudTrail LookupEvents responder (moto does not implement LookupEvents).

    python cloudtrail_responder.py --request-log requests.jsonl [--pages 3] [--key-id AKIA...]

It speaks the real wire protocol: POST / with
``X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`` (or the
short ``CloudTrail_20131101.LookupEvents`` the AWS SDK for Rust sends) and a
JSON 1.1 body, and answers ``{"Events": [...], "NextToken": ...}`` with each record embedded as
a JSON string in ``CloudTrailEvent`` and ``EventTime`` in epoch seconds, paging over --pages
pages. Every request is logged (arrival time, region from the SigV4 credential scope, the
NextToken, StartTime and EndTime it asked for), so a test can check the paging, the window and
the spacing of the calls. Prints ``PORT <n>`` when ready; serves until stdin closes or SIGTERM.
"""

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# botocore sends the long form, the AWS SDK for Rust the short one; CloudTrail takes both.
TARGETS = (
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
    "CloudTrail_20131101.LookupEvents",
)


def record(region, key_id, n, when):
    """One CloudTrail record as CloudTrail writes it."""
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": "arn:aws:iam::123456789012:user/alice",
            "accountId": "123456789012",
            "accessKeyId": key_id,
            "userName": "alice",
        },
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": None,
        "responseElements": None,
        "eventID": f"{region}-event-{n:04}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
    }


def make_handler(args, log, lock):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def send_json(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            arrived = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            target = self.headers.get("X-Amz-Target", "")
            scope = self.headers.get("Authorization", "").split("Credential=", 1)[-1].split(",")[0]
            parts = scope.split("/")
            region = parts[2] if len(parts) > 3 else ""
            with lock:
                log.write(json.dumps({
                    "time": arrived,
                    "target": target,
                    "region": region,
                    "next_token": body.get("NextToken"),
                    "start": body.get("StartTime"),
                    "end": body.get("EndTime"),
                    "max_results": body.get("MaxResults"),
                }) + "\n")
                log.flush()
            if target not in TARGETS:
                self.send_json(400, {"__type": "UnknownOperationException",
                                     "message": f"unknown operation {target}"})
                return
            token = body.get("NextToken")
            page = 1 if token is None else int(token.split("-")[-1])
            end = body.get("EndTime") or time.time()
            events = []
            for i in range(2):
                n = (page - 1) * 2 + i + 1
                when = float(end) - 3600 * n
                events.append({
                    "EventId": f"{region}-event-{n:04}",
                    "EventName": "ListBuckets",
                    "ReadOnly": "true",
                    "AccessKeyId": args.key_id,
                    "EventTime": when,
                    "EventSource": "s3.amazonaws.com",
                    "Username": "alice",
                    "Resources": [],
                    "CloudTrailEvent": json.dumps(record(region, args.key_id, n, when)),
                })
            out = {"Events": events}
            if page < args.pages:
                out["NextToken"] = f"page-{page + 1}"
            self.send_json(200, out)

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--request-log", required=True)
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--key-id", default="AKIAIOSFODNN7EXAMPLE")
    args = parser.parse_args()
    log = open(args.request_log, "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args, log, threading.Lock()))
    threading.Thread(target=server.serve_forever, daemon=True).start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    stop.wait()
    server.shutdown()


if __name__ == "__main__":
    main()
