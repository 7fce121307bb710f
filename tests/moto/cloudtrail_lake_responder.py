"""A small CloudTrail Lake responder (moto has no CloudTrail Lake): StartQuery, DescribeQuery
and GetQueryResults over CloudTrail records loaded into DuckDB (see lake_duckdb.py).

    python cloudtrail_lake_responder.py --records FILE_OR_DIR... --store ID \
        --request-log requests.jsonl [--page-size 50] [--fail-query usage|lifecycle]

It speaks the real wire protocol: POST / with ``X-Amz-Target:
com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Operation>`` (or the short
``CloudTrail_20131101.<Operation>``) and JSON 1.1 bodies. StartQuery runs the QueryStatement it
receives, as it is (the event data store id after FROM read as the table), and answers a
QueryId; an unknown store is EventDataStoreNotFoundException, a statement DuckDB refuses
InvalidQueryStatementException. DescribeQuery moves each query QUEUED → RUNNING → FINISHED, one
step per call (FAILED with an ErrorMessage for the query named by --fail-query, recognised by
its first comment line). GetQueryResults pages the rows (lists of single-member objects, every
value a string) over --page-size rows with NextToken. Every request is logged (target and
body). Prints ``PORT <n>`` when ready; serves until stdin closes or SIGTERM.
"""

import argparse
import json
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import lake_duckdb

PREFIXES = ("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.", "CloudTrail_20131101.")

STEPS = ["QUEUED", "RUNNING", "FINISHED"]


def make_handler(args, con, log, lock):
    queries = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def send_json(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(data)

        def error(self, kind, message):
            self.send_json(400, {"__type": kind, "message": message})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            target = self.headers.get("X-Amz-Target", "")
            operation = next((target[len(p):] for p in PREFIXES if target.startswith(p)), None)
            with lock:
                log.write(json.dumps({"time": time.time(), "target": target, "body": body}) + "\n")
                log.flush()
            handler = {
                "StartQuery": self.start_query,
                "DescribeQuery": self.describe_query,
                "GetQueryResults": self.get_query_results,
            }.get(operation)
            if handler is None:
                self.error("UnknownOperationException", f"unknown operation {target}")
                return
            with lock:
                handler(body)

        def start_query(self, body):
            statement = body.get("QueryStatement", "")
            if f"FROM {args.store}" not in statement:
                self.error("EventDataStoreNotFoundException",
                           "the statement names no event data store of this account")
                return
            first = statement.splitlines()[0] if statement else ""
            failing = args.fail_query is not None and first.startswith(
                "-- credaudit: " + {"usage": "CloudTrail usage", "lifecycle": "the successful lifecycle"}[args.fail_query])
            rows = []
            if not failing:
                try:
                    rows = lake_duckdb.run(con, statement, args.store)
                except Exception as e:  # DuckDB's refusal is the client's error
                    self.error("InvalidQueryStatementException", str(e))
                    return
            query_id = str(uuid.uuid4())
            queries[query_id] = {"rows": rows, "step": 0, "failing": failing}
            self.send_json(200, {"QueryId": query_id})

        def describe_query(self, body):
            query = queries.get(body.get("QueryId"))
            if query is None:
                self.error("QueryIdNotFoundException", "no such query")
                return
            query["step"] = min(query["step"] + 1, len(STEPS) - 1)
            out = {"QueryId": body["QueryId"], "QueryStatus": STEPS[query["step"]]}
            if query["failing"] and query["step"] == len(STEPS) - 1:
                out["QueryStatus"] = "FAILED"
                out["ErrorMessage"] = "Query exhausted resources at this scale factor"
            self.send_json(200, out)

        def get_query_results(self, body):
            query = queries.get(body.get("QueryId"))
            if query is None:
                self.error("QueryIdNotFoundException", "no such query")
                return
            if query["failing"] or STEPS[query["step"]] != "FINISHED":
                self.error("InactiveQueryException", "the query has not finished")
                return
            token = body.get("NextToken")
            page = 0 if token is None else int(token.split("-")[-1])
            size = args.page_size
            rows = query["rows"][page * size:(page + 1) * size]
            out = {
                "QueryStatus": "FINISHED",
                "QueryStatistics": {
                    "ResultsCount": len(rows),
                    "TotalResultsCount": len(query["rows"]),
                    "BytesScanned": 1024,
                },
                "QueryResultRows": rows,
            }
            if (page + 1) * size < len(query["rows"]):
                out["NextToken"] = f"page-{page + 1}"
            self.send_json(200, out)

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", nargs="+", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--request-log", required=True)
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--fail-query", choices=["usage", "lifecycle"])
    args = parser.parse_args()
    con = lake_duckdb.connect(args.records)
    log = open(args.request_log, "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args, con, log, threading.Lock()))
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
