#!/usr/bin/env bash
# Installs Shopify's Toxiproxy server (the emulated link of `npm run bench -- --link=10ms`) when it is missing, and
# prints the path of the binary. Built from source with the Go toolchain through the Go module proxy, into a cache
# directory of its own (the command's binary is called "server", too generic a name for GOPATH/bin).
#   bench/lib/install-toxiproxy.sh            -> /root/.cache/mail-session-broker/toxiproxy-v2.12.0/server
# Exits non-zero, saying why, when it cannot (no Go, no network): the benchmark then fails; it never skips the mode.
set -euo pipefail
VERSION="${TOXIPROXY_VERSION:-v2.12.0}"
DIR="${MSB_TOXIPROXY_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mail-session-broker/toxiproxy-$VERSION}"
BIN="$DIR/server"
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-toxiproxy: Go is not installed; install Go >= 1.22 (https://go.dev/dl/) or put a toxiproxy-server $VERSION at $BIN" >&2
  exit 1
fi
mkdir -p "$DIR"
echo "install-toxiproxy: go install github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION into $DIR" >&2
if ! GOBIN="$DIR" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION" >&2; then
  echo "install-toxiproxy: go install failed (see above); without Toxiproxy the --link mode cannot run" >&2
  exit 1
fi
"$BIN" -version >&2 || true
echo "$BIN"
