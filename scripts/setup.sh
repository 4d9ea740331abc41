#!/usr/bin/env bash
# Installs everything Skiff needs on a Debian machine, idempotently:
# Node >= 22 (see node-env.sh), the Debian packages, npm packages, the build.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/node-env.sh"
cd "$SKIFF_ROOT"

log() { echo "skiff setup: $*" >&2; }

# Debian packages, installed only when their command is missing (iperf3:
# bench/network's throughput figures; prometheus: the metrics e2e scrapes
# every component with it; wrk: bench/ingress's load generator).
# command:package
DEBIAN_NEEDS=(etcd:etcd-server etcdctl:etcd-client openssl:openssl iperf3:iperf3 prometheus:prometheus wrk:wrk)
# The node agent's runtime (containerd, runc, CNI plugins, iptables for
# hostPorts, nft for the service proxy, ip for routes, haproxy for ingress) and what images/build.sh packs into the offline
# images (busybox-static, redis-server, nginx; gcc and static libc for pause); a
# registry with basic auth on loopback for the image pull tests; the
# official Python client for its e2e test (run as /usr/bin/python3); Debian's
# chromium for the dashboard's browser tests (playwright-core drives it).
# file:package, for packages whose files are not all commands on PATH.
DEBIAN_FILES=(/usr/bin/containerd:containerd /usr/sbin/runc:runc /usr/lib/cni/bridge:containernetworking-plugins
  /usr/sbin/iptables:iptables /usr/sbin/nft:nftables /usr/sbin/haproxy:haproxy /usr/sbin/ip:iproute2 /bin/busybox:busybox-static /usr/bin/redis-server:redis-server
  /usr/bin/gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev /usr/sbin/nginx:nginx
  /usr/bin/docker-registry:docker-registry /usr/bin/htpasswd:apache2-utils
  /usr/lib/python3/dist-packages/kubernetes/__init__.py:python3-kubernetes /usr/bin/chromium:chromium)
missing=()
for pair in "${DEBIAN_NEEDS[@]}"; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
for pair in "${DEBIAN_FILES[@]}"; do
  [ -e "${pair%%:*}" ] || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}; run this as root, or: apt-get install ${missing[*]}"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  # The etcd-server, containerd, redis-server and docker-registry packages
  # enable system services; policy-rc.d keeps them from starting here (tests
  # start their own).
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# npm packages: only when package-lock.json changed since the last install.
stamp=node_modules/.skiff-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  log "installing npm packages (node $(node --version))"
  # Not `npm ci`: this npm writes lockfiles without other platforms' optional
  # packages (biome's binaries) and then refuses them in `npm ci`. `npm
  # install` follows the lockfile just the same.
  npm install --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

# Offline container images (pause, busybox, redis) for the node agent and
# its tests; cached by content, so this is instant when nothing changed.
bash images/build.sh .tools/images

# The dashboard's browser bundle (dist/dashboard-ui/), from npm packages
# only; cached by content like the images.
node src/dashboard/build.ts

log "building (tsc)"
tsc -p tsconfig.build.json
