#!/usr/bin/env python3
"""A small Bearer-token issuer for ferry's registry tests.

It is the "token realm" half of the Docker/OCI token authentication flow that Docker Hub, ACR,
GHCR and Harbor use: a registry answers 401 with
`WWW-Authenticate: Bearer realm=...,service=...,scope=...`, the client asks this issuer for a
token for those scopes, and the registry checks the token's RS256 signature against the
certificate in its `rootcertbundle` (carried in the JWT's `x5c` header).

Endpoints (both at /token):
  GET  ?service=S&scope=repository:NAME:pull,push[&scope=...]   with HTTP Basic credentials
  POST grant_type=password|refresh_token, service, scope (space separated), client_id,
       username/password or refresh_token, access_type=offline (returns a refresh_token)
The second is the OAuth2 form Docker uses with identity tokens, and ACR's /oauth2/token.

Users come from a JSON file: {"USER": {"password": "...", "actions": ["pull", "push"]}}.
Anonymous requests get a token with no access (the registry then answers 401/403), which is
what public registries do for private repositories.

Usage: token_issuer.py PORT KEY.pem CERT.pem USERS.json ISSUER [EXPIRES_IN]
"""

import base64
import binascii
import datetime
import http.server
import json
import secrets
import sys
import threading
import time
import urllib.parse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

PORT = int(sys.argv[1])
KEY = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), password=None)
CERT = x509.load_pem_x509_certificate(open(sys.argv[3], "rb").read())
USERS = json.load(open(sys.argv[4]))
ISSUER = sys.argv[5]
EXPIRES_IN = int(sys.argv[6]) if len(sys.argv) > 6 else 300
X5C = [base64.b64encode(CERT.public_bytes(serialization.Encoding.DER)).decode()]

REFRESH_TOKENS = {}  # refresh token -> user
LOCK = threading.Lock()


def parse_scopes(scopes):
    """`repository:name:pull,push` -> {"type", "name", "actions"}; names may contain ':' (ports)."""
    out = []
    for scope in scopes:
        for item in scope.split(" "):
            if not item:
                continue
            parts = item.split(":")
            if len(parts) < 3:
                continue
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            out.append({"type": typ, "name": name, "actions": actions})
    return out


def grant(user, requested):
    allowed = set(USERS[user]["actions"]) if user else set()
    access = []
    for item in requested:
        if item["type"] == "repository":
            actions = [a for a in item["actions"] if a in allowed or ("*" in allowed)]
        elif item["type"] == "registry" and item["name"] == "catalog":
            actions = [a for a in item["actions"] if "catalog" in allowed]
        else:
            actions = []
        access.append({"type": item["type"], "name": item["name"], "actions": actions})
    return access


def make_token(user, service, access):
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": user or "",
        "aud": service,
        "iat": now,
        "nbf": now - 10,
        "exp": now + EXPIRES_IN,
        "jti": secrets.token_hex(16),
        "access": access,
    }
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"x5c": X5C})


def check_password(user, password):
    entry = USERS.get(user)
    return entry is not None and secrets.compare_digest(entry["password"], password)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        # Never log query strings or bodies: they carry refresh tokens and passwords.
        sys.stderr.write("%s %s\n" % (self.command, self.path.split("?")[0]))

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def deny(self, message):
        self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": message}]})

    def basic_user(self):
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None, True
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, False
        return user, check_password(user, password)

    def issue(self, user, service, scopes, refresh=None):
        token = make_token(user, service, grant(user, parse_scopes(scopes)))
        body = {
            "token": token,
            "access_token": token,
            "expires_in": EXPIRES_IN,
            "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        if refresh:
            body["refresh_token"] = refresh
        self.reply(200, body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        query = urllib.parse.parse_qs(url.query)
        user, ok = self.basic_user()
        if not ok:
            return self.deny("invalid username or password")
        refresh = None
        if user and query.get("offline_token", ["false"])[0] == "true":
            refresh = secrets.token_urlsafe(32)
            with LOCK:
                REFRESH_TOKENS[refresh] = user
        self.issue(user, query.get("service", [""])[0], query.get("scope", []), refresh)

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        get = lambda k: form.get(k, [""])[0]
        grant_type = get("grant_type")
        refresh = None
        if grant_type == "password":
            user = get("username")
            if not check_password(user, get("password")):
                return self.deny("invalid username or password")
            if get("access_type") == "offline":
                refresh = secrets.token_urlsafe(32)
                with LOCK:
                    REFRESH_TOKENS[refresh] = user
        elif grant_type == "refresh_token":
            with LOCK:
                user = REFRESH_TOKENS.get(get("refresh_token"))
            if user is None:
                return self.deny("invalid refresh token")
        else:
            return self.reply(400, {"error": "unsupported_grant_type"})
        self.issue(user, get("service"), [get("scope")], refresh)


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    server.serve_forever()
