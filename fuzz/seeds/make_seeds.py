#!/usr/bin/env python3
"""Writes the raw seed corpus of every fuzz target into fuzz/seeds/out/<target>/ from the
repository's fixtures and test data (see fuzz/corpus/SOURCES.md). `cargo fuzz cmin` then
minimises each into fuzz/corpus/<target>/ (see fuzz/README.md)."""
import glob, gzip, hashlib, json, os, shutil, sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "fuzz", "seeds", "out")
SHAPES = [  # the order of credaudit::fuzzing::EXPORT_SHAPES
    "list-access-keys.json", "get-access-key-last-used.json",
    "get-account-authorization-details.json", "list-users.json", "list-user-tags.json",
    "list-secrets.json", "describe-secret.json", "coverage.json",
]
SKIP = ("/target/", "/fuzz/", "/.git/", "/tests/moto/.venv/")


def files(pattern):
    return sorted(p for p in glob.glob(os.path.join(ROOT, pattern), recursive=True)
                  if not any(s in p for s in SKIP) and os.path.isfile(p))


def put(target, data):
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


shutil.rmtree(OUT, ignore_errors=True)
for p in files("**/credential-report.csv"):
    put("credential_report_csv", read(p))
for p in files("**/get-credential-report.json"):
    put("credential_report_json", read(p))
for index, shape in enumerate(SHAPES):
    for p in files("**/" + shape):
        put("export_json", bytes([index]) + read(p))
# coverage.json as a live collection writes it.
put("export_json", bytes([7]) + json.dumps([
    {"account": "123456789012", "region": "us-east-1", "api": "secretsmanager:list-secrets",
     "ok": False, "error": "AccessDenied", "records": 0},
    {"account": "123456789012", "region": "global", "api": "iam:list-users", "ok": True,
     "error": None, "records": 3}]).encode())
trail = files("tests/data/cloudtrail/*.json") + files("tests/data/cloudtrail-lake/*.json") \
    + files("tests/rules/*/cloudtrail/**/*.json") \
    + files("fixtures/cloudtrail/invictus-aws-dataset/CloudTrail/*.json")
for p in trail:
    data = read(p)
    if len(data) <= 64 * 1024:
        put("cloudtrail_json", data)
for p in trail[:12]:
    data = read(p)
    if len(data) <= 64 * 1024:
        put("cloudtrail_gz", gzip.compress(data, mtime=0))
# Multi-member gzip: two log files concatenated, as S3 may deliver them.
small = [read(p) for p in trail if len(read(p)) < 8 * 1024][:2]
if len(small) == 2:
    put("cloudtrail_gz", gzip.compress(small[0], mtime=0) + gzip.compress(small[1], mtime=0))


def page(rows):
    return json.dumps({"QueryStatus": "FINISHED", "QueryResultRows": [
        [{k: v} for k, v in row.items()] for row in rows]}).encode()


usage = [
    {"accessKeyId": "AKIAEXAMPLE000000001", "secretId": None, "secretIdList": None,
     "windowStart": "1709546400", "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
     "sourceIPAddress": "203.0.113.5", "awsRegion": "eu-west-1", "errorCode": None,
     "account": "111122223333", "calls": "3"},
    {"accessKeyId": "AKIAEXAMPLE000000001", "secretId": None,
     "secretIdList": "[prod/a, arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/b-AbCdEf]",
     "windowStart": "1709546700", "eventSource": "secretsmanager.amazonaws.com",
     "eventName": "BatchGetSecretValue", "sourceIPAddress": "2001:db8::1",
     "awsRegion": "eu-west-1", "errorCode": None, "account": "111122223333", "calls": "1"},
    {"accessKeyId": "AKIAEXAMPLE000000002", "secretId": "prod/a", "secretIdList": None,
     "windowStart": "1709547000", "eventSource": "secretsmanager.amazonaws.com",
     "eventName": "GetSecretValue", "sourceIPAddress": "198.51.100.7", "awsRegion": "us-east-1",
     "errorCode": "AccessDenied", "account": "111122223333", "calls": "7"},
]
lifecycle = [
    {"eventTime": "2024-03-04 10:01:10.000", "eventSource": "iam.amazonaws.com",
     "eventName": "CreateAccessKey", "userArn": "arn:aws:iam::111122223333:user/admin",
     "invokedBy": None, "principalId": "AIDAEXAMPLE", "identityType": "IAMUser",
     "sourceIPAddress": "203.0.113.5", "accessKeyId": None, "status": None, "name": None,
     "secretId": None, "versionStage": None, "versionStages": None, "moveToVersionId": None,
     "createdAccessKeyId": "AKIAEXAMPLE000000003", "arn": None, "aRN": None},
    {"eventTime": "2024-03-04T11:00:00Z", "eventSource": "secretsmanager.amazonaws.com",
     "eventName": "PutSecretValue", "userArn": None, "invokedBy": "lambda.amazonaws.com",
     "principalId": None, "identityType": "AWSService", "sourceIPAddress": None,
     "accessKeyId": None, "status": None, "name": None, "secretId": "prod/a",
     "versionStage": None, "versionStages": "[\"AWSPENDING\"]", "moveToVersionId": None,
     "createdAccessKeyId": None, "arn": None, "aRN": None},
    {"eventTime": "2024-03-04 12:00:00.000", "eventSource": "secretsmanager.amazonaws.com",
     "eventName": "UpdateSecretVersionStage", "userArn": None, "invokedBy": None,
     "principalId": None, "identityType": "AWSService", "sourceIPAddress": None,
     "accessKeyId": None, "status": None, "name": None, "secretId": "prod/a",
     "versionStage": "AWSCURRENT", "versionStages": None, "moveToVersionId": "v2",
     "createdAccessKeyId": None, "arn": None, "aRN": None},
]
put("cloudtrail_lake", b"\x00" + page(usage))
put("cloudtrail_lake", b"\x00" + page([]))
put("cloudtrail_lake", b"\x01" + page(lifecycle))
for p in files("**/inventory.toml"):
    put("inventory", read(p))
for p in files("**/history.jsonl"):
    put("history", read(p))
for p in files("**/waivers.toml"):
    put("waivers", read(p))
for p in files("controls/*.toml"):
    put("controls", read(p))
for target in sorted(os.listdir(OUT)):
    folder = os.path.join(OUT, target)
    sizes = [os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)]
    print(f"{target}: {len(sizes)} files, {sum(sizes)} bytes", file=sys.stderr)
