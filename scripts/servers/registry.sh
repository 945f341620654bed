#!/usr/bin/env bash
# The reference OCI registry (Debian docker-registry, CNCF distribution 2.8) in four auth modes,
# plus skopeo (the independent verifier), buildah/crun (daemonless builds) and a token issuer.
#
#   install: apt packages + a venv under /opt/ferry-test/registry for the token issuer
#   start:   every server on 127.0.0.1, state under $FERRY_SERVERS_DIR/registry
#     5020  no auth                                  FERRY_TEST_REGISTRY_NOAUTH
#     5021  htpasswd (Basic)                         FERRY_TEST_REGISTRY_HTPASSWD
#     5022  Bearer token realm (issuer on 5023)      FERRY_TEST_REGISTRY_TOKEN, ..._TOKEN_REALM
#     5024  htpasswd with moto's ECR login user      FERRY_TEST_REGISTRY_ECR
#   User and password (random per start, shared by 5021 and the issuer):
#     FERRY_TEST_REGISTRY_USER / FERRY_TEST_REGISTRY_PASSWORD; a pull-only user on the issuer:
#     FERRY_TEST_REGISTRY_READER_USER / FERRY_TEST_REGISTRY_READER_PASSWORD.
#   stop:    kill what start started (PID files)
#
# The registries never read the package's /etc/docker/registry config (it listens on every
# interface). State is shared by every test process: tests use unique repository names.
set -euo pipefail
name=registry
here=$(cd "$(dirname "$0")" && pwd)
venv=/opt/ferry-test/registry
dir="${FERRY_SERVERS_DIR:?run through scripts/servers.sh}/$name"
moto_port="${FERRY_MOTO_PORT:-5010}"

wait_http() { # URL NAME LOG
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start; see $3" >&2
  exit 1
}

running() { [ -e "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_registry() { # NAME PORT AUTH_YAML
  local n=$1 port=$2 auth=$3 root="$dir/$1"
  mkdir -p "$root/data"
  cat >"$root/config.yml" <<YAML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $root/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: ferry-test-$n
$auth
YAML
  if ! running "$dir/registry-$n.pid"; then
    docker-registry serve "$root/config.yml" >"$root/registry.log" 2>&1 &
    echo $! >"$dir/registry-$n.pid"
  fi
  wait_http "http://127.0.0.1:$port/v2/" "registry $n" "$root/registry.log"
  # Something else answering on the port (a stale registry) is not ours to use.
  running "$dir/registry-$n.pid" || { echo "registry $n exited; see $root/registry.log" >&2; exit 1; }
}

case "$1" in
  install)
    apt-get install -y -qq --no-install-recommends \
      docker-registry skopeo apache2-utils buildah crun openssl curl >/dev/null
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import jwt, cryptography' 2>/dev/null; then
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q --disable-pip-version-check 'PyJWT[crypto]==2.10.1'
    fi
    ;;
  start)
    command -v docker-registry >/dev/null || { echo "docker-registry is not installed: scripts/servers.sh install" >&2; exit 1; }
    mkdir -p "$dir"
    chmod 700 "$dir"
    # Credentials: random per state dir (kept across restarts so running tests stay valid).
    if [ ! -e "$dir/credentials" ]; then
      (umask 077; printf 'ferry\n%s\nreader\n%s\n' "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" >"$dir/credentials")
    fi
    { read -r user; read -r password; read -r reader; read -r reader_password; } <"$dir/credentials"

    # 5020: no auth.
    start_registry noauth 5020 ""

    # 5021: htpasswd.
    (umask 077; htpasswd -Bbc "$dir/users.htpasswd" "$user" "$password" 2>/dev/null)
    start_registry htpasswd 5021 "auth:
  htpasswd:
    realm: ferry-test
    path: $dir/users.htpasswd"

    # 5023: the token issuer; 5022: the registry trusting it.
    if [ ! -e "$dir/token.crt" ]; then
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=ferry-test-token-issuer \
        -keyout "$dir/token.key" -out "$dir/token.crt" 2>/dev/null
      chmod 600 "$dir/token.key"
    fi
    (umask 077; printf '{"%s": {"password": "%s", "actions": ["pull", "push", "delete", "catalog"]}, "%s": {"password": "%s", "actions": ["pull"]}}\n' \
      "$user" "$password" "$reader" "$reader_password" >"$dir/token-users.json")
    if ! running "$dir/token-issuer.pid"; then
      "$venv/bin/python" "$here/registry/token_issuer.py" 5023 "$dir/token.key" "$dir/token.crt" \
        "$dir/token-users.json" ferry-test-issuer 300 >"$dir/token-issuer.log" 2>&1 &
      echo $! >"$dir/token-issuer.pid"
    fi
    wait_http "http://127.0.0.1:5023/token" "token issuer" "$dir/token-issuer.log"
    start_registry token 5022 "auth:
  token:
    realm: http://127.0.0.1:5023/token
    service: ferry-test-registry
    issuer: ferry-test-issuer
    rootcertbundle: $dir/token.crt"

    # 5024: the registry behind moto's ECR login. Its htpasswd holds exactly the user and
    # password moto's GetAuthorizationToken hands out (base64 "AWS:<account>-auth-token"),
    # read from moto itself so a change in moto shows up here.
    ecr_token=$(curl -fsS -X POST "http://127.0.0.1:$moto_port/" \
      -H 'X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken' \
      -H 'Content-Type: application/x-amz-json-1.1' \
      -H 'Authorization: AWS4-HMAC-SHA256 Credential=AKIDFERRYTEST/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=00' \
      -d '{}' | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["authorizationData"][0]["authorizationToken"])') \
      || { echo "cannot read moto's ECR token: is moto running on port $moto_port?" >&2; exit 1; }
    ecr_login=$(printf '%s' "$ecr_token" | base64 -d)
    (umask 077; htpasswd -Bbc "$dir/ecr-users.htpasswd" "${ecr_login%%:*}" "${ecr_login#*:}" 2>/dev/null)
    start_registry ecr 5024 "auth:
  htpasswd:
    realm: ferry-test-ecr
    path: $dir/ecr-users.htpasswd"

    # Keep KEY=VALUE lines whole even if the file's last line has no newline.
    [ -s "$FERRY_SERVERS_ENV" ] && [ -n "$(tail -c1 "$FERRY_SERVERS_ENV")" ] && echo >>"$FERRY_SERVERS_ENV"
    {
      echo "FERRY_TEST_REGISTRY_NOAUTH=127.0.0.1:5020"
      echo "FERRY_TEST_REGISTRY_HTPASSWD=127.0.0.1:5021"
      echo "FERRY_TEST_REGISTRY_TOKEN=127.0.0.1:5022"
      echo "FERRY_TEST_REGISTRY_TOKEN_REALM=http://127.0.0.1:5023/token"
      echo "FERRY_TEST_REGISTRY_ECR=127.0.0.1:5024"
      echo "FERRY_TEST_REGISTRY_USER=$user"
      echo "FERRY_TEST_REGISTRY_PASSWORD=$password"
      echo "FERRY_TEST_REGISTRY_READER_USER=$reader"
      echo "FERRY_TEST_REGISTRY_READER_PASSWORD=$reader_password"
    } >>"$FERRY_SERVERS_ENV"
    ;;
  stop)
    for pidfile in "$dir"/registry-*.pid "$dir"/token-issuer.pid; do
      [ -e "$pidfile" ] || continue
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    done
    ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
