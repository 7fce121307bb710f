"""A real AWS emulator (moto's server, in-process) holding a small fleet with backdated ages.

Started by tests/aws_live.rs and scripts/bench-live.sh:

    python fleet_server.py --as-of 2026-11-01T00:00:00Z --manifest fleet.json \
        --request-log requests.jsonl [--fleet test|bench] [--users N --secrets N]

It starts moto's ThreadedMotoServer on a free loopback port, creates the fleet through boto3
against itself (IAM users, access keys and tags; Secrets Manager secrets with planted values in
two regions; a second account reached through sts:AssumeRole), then sets the stored dates on
moto's backend objects (an emulator cannot otherwise make a key 100 days old). It writes a
manifest of what it made (key ids, secret ARNs, the planted values) and then prints
``PORT <n>`` on stdout. From then on every request is logged to --request-log as one JSON line
(operation, region, time) by a WSGI middleware, so a test can see exactly what the scanner sent.
It serves until stdin closes or it gets SIGTERM.
"""

import argparse
import io
import json
import secrets as pyrandom
import signal
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import boto3
from moto.iam.models import AccessKeyLastUsed, iam_backends
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.organizations.models import organizations_backends
from moto.secretsmanager.models import secretsmanager_backends
from werkzeug.serving import make_server

BASE_ACCOUNT = "123456789012"  # moto's default account, the one the "testing" keys land in
SECOND_ACCOUNT = "222222222222"
# A member account of the test organisation whose audit role refuses to be assumed.
REFUSING_ACCOUNT = "333333333333"
AUDIT_ROLE = f"arn:aws:iam::{SECOND_ACCOUNT}:role/credaudit-audit"
EXTERNAL_ID = "credaudit-test-external-id"
REGIONS = ["us-east-1", "eu-west-1"]


class RequestLog:
    """WSGI middleware: one JSON line per request once `enabled` (after the fleet is made)."""

    def __init__(self, app, path):
        self.app = app
        self.file = open(path, "a", encoding="utf-8") if path else None
        self.lock = threading.Lock()
        self.enabled = False

    def __call__(self, environ, start_response):
        refused = self.refuse(environ)
        if refused is not None:
            return refused(environ, start_response)
        if self.enabled and self.file is not None:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            action = ""
            if not target:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length) if length else b""
                environ["wsgi.input"] = io.BytesIO(body)
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
                action = (form.get("Action") or query.get("Action") or [""])[0]
            auth = environ.get("HTTP_AUTHORIZATION", "")
            scope = ""
            if "Credential=" in auth:
                # Credential=AKID/20261101/us-east-1/iam/aws4_request
                scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
            parts = scope.split("/")
            record = {
                "time": time.time(),
                "operation": target.rsplit(".", 1)[-1] if target else action,
                "target": target,
                "action": action,
                "region": parts[2] if len(parts) > 3 else "",
                "service": parts[3] if len(parts) > 3 else "",
            }
            with self.lock:
                self.file.write(json.dumps(record) + "\n")
                self.file.flush()
        return self.app(environ, start_response)


    @staticmethod
    def refuse(environ):
        """An AccessDenied answer to sts:AssumeRole into REFUSING_ACCOUNT (moto lets any role be
        assumed; a real member account whose role does not trust the scanner refuses)."""
        if environ.get("HTTP_X_AMZ_TARGET") or environ.get("REQUEST_METHOD") != "POST":
            return None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if (form.get("Action") or [""])[0] != "AssumeRole":
            return None
        if f":{REFUSING_ACCOUNT}:" not in (form.get("RoleArn") or [""])[0]:
            return None
        text = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            "<Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to "
            "perform: sts:AssumeRole</Message></Error><RequestId>refused</RequestId></ErrorResponse>"
        ).encode()

        def app(environ, start_response):
            start_response("403 Forbidden", [("Content-Type", "text/xml"),
                                              ("Content-Length", str(len(text)))])
            return [text]

        return app


class LoggedMotoServer(ThreadedMotoServer):
    """moto's threaded server with the request log wrapped around its WSGI app."""

    def __init__(self, log_path):
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.log = RequestLog(DomainDispatcherApplication(create_backend_app), log_path)

    def _server_entry(self):
        self._server = make_server(
            self._ip_address, self._port, self.log, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def naive(dt):
    """moto stores IAM dates as naive UTC datetimes."""
    return dt.astimezone(timezone.utc).replace(tzinfo=None)


class Fleet:
    def __init__(self, url, as_of):
        self.url = url
        self.as_of = as_of
        self.manifest = {"accounts": {}, "planted": [], "role": AUDIT_ROLE, "external_id": EXTERNAL_ID}

    def clients(self, service, region="us-east-1", creds=None):
        creds = creds or {"AccessKeyId": "testing", "SecretAccessKey": "testing", "SessionToken": None}
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds.get("SessionToken"),
        )

    def days_ago(self, days):
        return self.as_of - timedelta(days=days)

    def account(self, account_id):
        return self.manifest["accounts"].setdefault(
            account_id, {"keys": {}, "secrets": {}, "users": []}
        )

    def user(self, account_id, creds, name, keys, tags=None):
        """`keys`: list of (created days ago, last used days ago or None, status)."""
        iam = self.clients("iam", creds=creds)
        iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
        backend = iam_backends[account_id]["aws"]
        backend.users[name].create_date = naive(self.days_ago(max([k[0] for k in keys] + [1]) + 1))
        made = []
        for index, (created, used, status) in enumerate(keys):
            key_id = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
            if status != "Active":
                iam.update_access_key(UserName=name, AccessKeyId=key_id, Status=status)
            key = next(k for k in backend.users[name].access_keys if k.access_key_id == key_id)
            key.create_date = naive(self.days_ago(created))
            key.last_used = (
                None
                if used is None
                else AccessKeyLastUsed(
                    timestamp=naive(self.days_ago(used)), service="s3", region="us-east-1"
                )
            )
            made.append(key_id)
            self.account(account_id)["keys"][f"{name}/{index}"] = key_id
        self.account(account_id)["users"].append(name)
        return made

    def secret(self, account_id, creds, region, name, created, rotated=None, rotation=None,
               with_value=True, tags=None, delete=False):
        """`rotation`: None (never configured), or (enabled, every N days)."""
        sm = self.clients("secretsmanager", region=region, creds=creds)
        planted = f"PLANTED-SECRET-{pyrandom.token_hex(12)}"
        kwargs = {"Name": name, "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}
        if with_value:
            kwargs["SecretString"] = json.dumps({"password": planted})
            self.manifest["planted"].append(planted)
        arn = sm.create_secret(**kwargs)["ARN"]
        stored = secretsmanager_backends[account_id][region].secrets[name]
        stored.created_date = int(self.days_ago(created).timestamp())
        stored.last_changed_date = int(self.days_ago(rotated if rotated is not None else created).timestamp())
        if rotation is not None:
            enabled, every = rotation
            stored.rotation_requested = True
            stored.rotation_enabled = enabled
            stored.auto_rotate_after_days = every
            stored.rotation_lambda_arn = f"arn:aws:lambda:{region}:{account_id}:function:rotate"
            if rotated is not None:
                stored.last_rotation_date = int(self.days_ago(rotated).timestamp())
        if delete:
            sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
        else:
            self.account(account_id)["secrets"][f"{region}/{name}"] = arn
        return arn

    def make_test_fleet(self):
        base = None
        # Account 1 (the base credentials' own).
        self.user(BASE_ACCOUNT, base, "alice", [(100, 1, "Active")], {"owner": "team-payments"})
        self.user(BASE_ACCOUNT, base, "bob", [(60, None, "Active")])
        self.user(BASE_ACCOUNT, base, "carol", [(10, 1, "Active"), (3, 1, "Active")])
        self.user(BASE_ACCOUNT, base, "dave", [(5, 1, "Active")])
        self.user(BASE_ACCOUNT, base, "erin", [(200, 150, "Inactive")])
        # Two keys made in the same second, one used, one never: the credential report cannot
        # tell which slot is which, so their last use must be asked for key by key.
        self.user(BASE_ACCOUNT, base, "grace", [(20, 2, "Active"), (20, None, "Active")],
                  {"owner": "team-payments"})
        self.secret(BASE_ACCOUNT, base, "us-east-1", "prod/db-password", created=120, rotated=20,
                    rotation=(False, 30), tags={"owner": "team-payments"})
        self.secret(BASE_ACCOUNT, base, "us-east-1", "prod/api-key", created=90, rotated=5,
                    rotation=(True, 30))
        self.secret(BASE_ACCOUNT, base, "us-east-1", "prod/placeholder", created=30, with_value=False)
        self.secret(BASE_ACCOUNT, base, "us-east-1", "prod/retired", created=300, delete=True)
        self.secret(BASE_ACCOUNT, base, "eu-west-1", "eu/llm-key", created=10)
        # Account 2, reached like the scanner will: through the audit role.
        sts = self.clients("sts")
        creds = sts.assume_role(RoleArn=AUDIT_ROLE, RoleSessionName="fixture",
                                ExternalId=EXTERNAL_ID)["Credentials"]
        self.user(SECOND_ACCOUNT, creds, "frank", [(40, 2, "Active")])
        self.secret(SECOND_ACCOUNT, creds, "us-east-1", "team2/token", created=15, rotated=15,
                    rotation=(True, 30))
        self.secret(SECOND_ACCOUNT, creds, "eu-west-1", "team2/eu-token", created=15)
        self.make_organization()

    def make_organization(self):
        """The base account manages an organisation of three accounts: itself, SECOND_ACCOUNT
        (in an organisational unit) and REFUSING_ACCOUNT (at the root, its role refuses)."""
        org = self.clients("organizations")
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        ou = org.create_organizational_unit(ParentId=root, Name="agents")["OrganizationalUnit"]["Id"]
        backend = organizations_backends[BASE_ACCOUNT]["aws"]
        for wanted, name in [(SECOND_ACCOUNT, "team2"), (REFUSING_ACCOUNT, "locked")]:
            made = org.create_account(Email=f"{name}@example.com", AccountName=name)
            made_id = made["CreateAccountStatus"]["AccountId"]
            # moto draws account ids at random: give the account the id the fleet uses.
            backend.get_account_by_id(made_id).id = wanted
        org.move_account(AccountId=SECOND_ACCOUNT, SourceParentId=root, DestinationParentId=ou)
        self.manifest["organization"] = {
            "root": root,
            "ou": ou,
            "accounts": sorted(a["Id"] for a in org.list_accounts()["Accounts"]),
            "refusing": REFUSING_ACCOUNT,
        }

    def make_bench_fleet(self, users, secrets, regions=2):
        """`users` users with two keys each, `secrets` secrets split over the first `regions`
        regions."""
        for n in range(users):
            self.user(BASE_ACCOUNT, None, f"agent-{n:05}",
                      [(10 + n % 90, n % 50, "Active"), (5 + n % 30, None, "Active")],
                      {"owner": f"team-{n % 20}", "class": "B"})
        for n in range(secrets):
            region = REGIONS[n % regions]
            self.secret(BASE_ACCOUNT, None, region, f"agents/{n:05}/token", created=60 + n % 100,
                        rotated=n % 60, rotation=(n % 3 != 0, 30))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--request-log")
    parser.add_argument("--fleet", choices=["test", "bench", "empty"], default="test")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--regions", type=int, default=2, choices=[1, 2])
    args = parser.parse_args()
    as_of = datetime.fromisoformat(args.as_of.replace("Z", "+00:00"))

    server = LoggedMotoServer(args.request_log)
    server.start()
    port = server.get_host_and_port()[1]
    fleet = Fleet(f"http://127.0.0.1:{port}", as_of)
    started = time.time()
    if args.fleet == "test":
        fleet.make_test_fleet()
    elif args.fleet == "bench":
        fleet.make_bench_fleet(args.users, args.secrets, args.regions)
    fleet.manifest["port"] = port
    fleet.manifest["setup_seconds"] = round(time.time() - started, 2)
    with open(args.manifest, "w", encoding="utf-8") as out:
        json.dump(fleet.manifest, out, indent=2)
    server.log.enabled = True

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin():
        sys.stdin.read()  # returns at EOF: the test closed its end
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"PORT {port}", flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
