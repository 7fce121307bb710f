"""A responder in front of the AWS emulator that throttles every Nth request, as AWS does when
an account's API rate is exceeded: the answer is the service's own throttling error (the
query-protocol XML `Throttling` of IAM and STS, the JSON `ThrottlingException` of the JSON
protocols), everything else is passed to the emulator unchanged.

    python throttling_proxy.py --upstream http://127.0.0.1:PORT --every 3 --log proxy.jsonl

Prints ``PORT <n>`` once listening; logs one JSON line per request (operation, throttled); serves
until stdin closes.
"""

import argparse
import http.client
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--every", type=int, default=3)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    upstream = urllib.parse.urlsplit(args.upstream)
    lock = threading.Lock()
    state = {"n": 0}
    log = open(args.log, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            target = self.headers.get("X-Amz-Target", "")
            if target:
                operation = target.rsplit(".", 1)[-1]
            else:
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                operation = (form.get("Action") or [""])[0]
            with lock:
                state["n"] += 1
                throttle = state["n"] % args.every == 0
                log.write(json.dumps({"operation": operation, "throttled": throttle}) + "\n")
                log.flush()
            if throttle:
                if target:
                    out = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                    kind = "application/x-amz-json-1.1"
                else:
                    out = (
                        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                        "<Message>Rate exceeded</Message></Error>"
                        "<RequestId>throttled</RequestId></ErrorResponse>"
                    ).encode()
                    kind = "text/xml"
                self.send_response(400)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                return
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            headers["Host"] = upstream.netloc
            conn.request("POST", self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
