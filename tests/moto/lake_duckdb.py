"""CloudTrail records in DuckDB, shaped like a CloudTrail Lake event data store, to run
credaudit's CloudTrail Lake queries (src/collect/lake/*.sql) exactly as they are sent.

The table has the columns of a Lake event data store that the queries read: ``userIdentity``
a struct, ``eventTime`` a timestamp (UTC), ``requestParameters`` and ``responseElements``
maps of string to string (a nested value kept as JSON text, as Lake keeps it), the rest
strings. Lake runs Trino SQL; three Trino functions DuckDB lacks or spells differently are
defined as macros with Trino's meaning: ``element_at(map, key)`` (the value or NULL),
``json_extract_scalar`` and ``to_unixtime``. The query text itself is not changed, except the
event data store id after FROM, which becomes the table.

    python lake_duckdb.py --records FILE_OR_DIR... --statement-file SQL --store ID \
        --page-size N --out DIR --name usage

writes the result as GetQueryResults pages (``DIR/<name>-0001.json``, …): rows as lists of
single-member objects, every value a string (NULL as an empty string).
"""

import argparse
import gzip
import json
import os
import re

import duckdb

TABLE = "cloudtrail_events"

SCHEMA = f"""
CREATE TABLE {TABLE} (
    eventVersion VARCHAR,
    userIdentity STRUCT(
        type VARCHAR, principalId VARCHAR, arn VARCHAR, accountId VARCHAR,
        accessKeyId VARCHAR, userName VARCHAR, invokedBy VARCHAR
    ),
    eventTime TIMESTAMP,
    eventSource VARCHAR,
    eventName VARCHAR,
    awsRegion VARCHAR,
    sourceIPAddress VARCHAR,
    errorCode VARCHAR,
    requestParameters MAP(VARCHAR, VARCHAR),
    responseElements MAP(VARCHAR, VARCHAR),
    recipientAccountId VARCHAR
)
"""

TRINO_FUNCTIONS = [
    "CREATE MACRO element_at(m, k) AS m[k]",
    "CREATE MACRO json_extract_scalar(j, p) AS json_extract_string(j, p)",
    "CREATE MACRO to_unixtime(t) AS epoch(t)",
]

IDENTITY = ["type", "principalId", "arn", "accountId", "accessKeyId", "userName", "invokedBy"]


def read_records(path):
    """The records of one CloudTrail file: S3 delivery, a bare array or lookup-events output."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    doc = json.loads(data)
    if isinstance(doc, list):
        return doc
    if "Records" in doc:
        return doc["Records"]
    if "Events" in doc:
        return [json.loads(e["CloudTrailEvent"]) for e in doc["Events"] if "CloudTrailEvent" in e]
    raise ValueError(f"{path}: not a CloudTrail file")


def files_of(paths):
    out = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out += [os.path.join(root, n) for n in sorted(names)
                        if (n.endswith(".json") or n.endswith(".json.gz")) and not n.startswith(".")
                        and "CloudTrail-Digest" not in n]
        else:
            out.append(path)
    return out


def as_map(value):
    """A JSON object as Lake's map<string, string>: strings kept, other values as JSON text."""
    if not isinstance(value, dict):
        return None
    return {k: (v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
            for k, v in value.items() if v is not None}


def text(value):
    return value if isinstance(value, str) else None


def row_of(record):
    identity = record.get("userIdentity")
    identity = {k: text(identity.get(k)) for k in IDENTITY} if isinstance(identity, dict) else None
    when = record.get("eventTime")
    when = when.replace("T", " ").replace("Z", "") if isinstance(when, str) else None
    return (
        text(record.get("eventVersion")),
        identity,
        when,
        text(record.get("eventSource")),
        text(record.get("eventName")),
        text(record.get("awsRegion")),
        text(record.get("sourceIPAddress")),
        text(record.get("errorCode")),
        as_map(record.get("requestParameters")),
        as_map(record.get("responseElements")),
        text(record.get("recipientAccountId")),
    )


def connect(paths):
    """A DuckDB database with the records of `paths` in TABLE and the Trino functions."""
    con = duckdb.connect()
    con.execute(SCHEMA)
    for statement in TRINO_FUNCTIONS:
        con.execute(statement)
    rows = [row_of(r) for f in files_of(paths) for r in read_records(f) if isinstance(r, dict)]
    con.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return con


def run(con, statement, store):
    """Runs the statement as sent (the store id after FROM becomes the table) and gives the rows
    as QueryResultRows."""
    pattern = re.compile(r"\bFROM\s+" + re.escape(store) + r"\b")
    if not pattern.search(statement):
        raise ValueError(f"the statement does not read FROM {store}")
    cursor = con.execute(pattern.sub(f"FROM {TABLE}", statement))
    names = [d[0] for d in cursor.description]
    rows = []
    for values in cursor.fetchall():
        rows.append([{n: ("" if v is None else str(v))} for n, v in zip(names, values)])
    return rows


def pages(rows, page_size):
    chunks = [rows[i:i + page_size] for i in range(0, len(rows), page_size)] or [[]]
    return chunks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", nargs="+", required=True)
    parser.add_argument("--statement-file", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--out", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    con = connect(args.records)
    with open(args.statement_file, encoding="utf-8") as f:
        statement = f.read()
    rows = run(con, statement, args.store)
    chunks = pages(rows, args.page_size)
    os.makedirs(args.out, exist_ok=True)
    for n, chunk in enumerate(chunks, 1):
        doc = {"QueryStatus": "FINISHED", "QueryResultRows": chunk}
        if n < len(chunks):
            doc["NextToken"] = f"page-{n + 1}"
        with open(os.path.join(args.out, f"{args.name}-{n:04}.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
    print(json.dumps({"rows": len(rows), "pages": len(chunks)}))


if __name__ == "__main__":
    main()
