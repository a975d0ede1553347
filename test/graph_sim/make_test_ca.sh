#!/usr/bin/env bash
# Generates a throw-away test CA and a server certificate for 127.0.0.1 and localhost signed
# by it, for the simulator's HTTPS mode and for testing certificate verification.
#
#   test/graph_sim/make_test_ca.sh DIR
#
# Writes exactly DIR/ca.pem, DIR/server.pem and DIR/server.key (DIR is created if needed).
# The CA key exists only in a temporary directory that is removed on exit.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
out=$1
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
  -keyout "$work/ca.key" -out "$work/ca.pem" \
  -subj "/CN=connector graph_sim test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -newkey rsa:2048 -nodes -sha256 \
  -keyout "$work/server.key" -out "$work/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null

cat > "$work/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EXT
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 2 -sha256 -extfile "$work/server.ext" \
  -out "$work/server.pem" 2>/dev/null

install -m 0644 "$work/ca.pem" "$out/ca.pem"
install -m 0644 "$work/server.pem" "$out/server.pem"
install -m 0600 "$work/server.key" "$out/server.key"
