#!/usr/bin/env bash
# Removes a Skiff cluster from this machine, as k3s-uninstall.sh does:
#
#   bash scripts/uninstall.sh [--data-dir DIR] [--cluster-cidr CIDR] [--service-cidr CIDR]
#
# 1. stops `skiff server` (scripts/up.sh --stop); for a cluster of hosts
#    (scripts/up.sh --hosts N) that removes every host: its processes,
#    containers, mounts, network namespace, and the bridge;
# 2. kills every container of the node (through runc, with containerd's own
#    runc root under the data dir) and the containerd shims that ran them;
# 3. unmounts what the kubelet and containerd mounted under the data dir;
# 4. removes the node's network state: `skiff agent --cleanup` (the proxy's
#    nftables table or iptables chains, routes, pod bridges, CNI state, the
#    cluster DNS address); a cluster of hosts had all that in the hosts'
#    namespaces, gone in step 1, so the machine's own is left alone;
# 5. removes the /usr/local/bin links scripts/up.sh made (only our own links,
#    and only with the default data dir);
# 6. deletes the data dir, with every object of the cluster in it.
#
# The Debian packages, Node and npm packages it installed are left alone
# (other software may use them); `rm -rf .tools node_modules dist` in the
# repository removes Skiff's own copies.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/node-env.sh"
cd "$SKIFF_ROOT"

say() { echo "skiff uninstall: $*" >&2; }

data_dir=""
default_data_dir=/var/lib/skiff
[ "$(id -u)" -eq 0 ] || default_data_dir="$HOME/.skiff"
cluster_cidr=10.42.0.0/16
service_cidr=10.43.0.0/16
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) data_dir="$2"; shift 2 ;;
    --cluster-cidr) cluster_cidr="$2"; shift 2 ;;
    --service-cidr) service_cidr="$2"; shift 2 ;;
    -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) say "unknown flag $1 (see --help)"; exit 2 ;;
  esac
done
data_dir="${data_dir:-$default_data_dir}"
data_dir="$(readlink -m "$data_dir")"
if [ ! -d "$data_dir" ]; then
  say "no cluster at $data_dir; nothing to do"
  exit 0
fi

hosts_cluster=""
[ -f "$data_dir/hosts.json" ] && hosts_cluster=1
say "[1/6] stopping skiff server${hosts_cluster:+ and removing its hosts}"
bash scripts/up.sh --stop --data-dir "$data_dir" || true

say "[2/6] killing the node's containers"
runc_root="$data_dir/agent/containerd/runc/k8s.io"
if [ -d "$runc_root" ] && command -v runc >/dev/null; then
  for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
    runc --root "$runc_root" kill "$id" KILL 2>/dev/null || true
    runc --root "$runc_root" delete --force "$id" 2>/dev/null || true
  done
fi
# The shims of this node's containerd name its socket on their command line.
pkill -KILL -f "containerd-shim.*$data_dir/agent/containerd" 2>/dev/null || true
pkill -KILL -f "containerd --config $data_dir/agent/containerd" 2>/dev/null || true

say "[3/6] unmounting under $data_dir"
{ findmnt -rn -o TARGET | grep -F "$data_dir/" || true; } | sort -r | while read -r target; do
  umount -l "$target" 2>/dev/null || true
done
# containerd's sandbox network namespaces live in /run/netns (cni-*).
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
  if ! ip netns pids "$ns" 2>/dev/null | grep -q .; then ip netns delete "$ns" 2>/dev/null || true; fi
done

say "[4/6] removing the node's network state"
[ -n "$hosts_cluster" ] && say "a cluster of hosts: its network state went with its namespaces"
[ -n "$hosts_cluster" ] || bin/skiff agent --cleanup --data-dir "$data_dir" --cluster-cidr "$cluster_cidr" --service-cidr "$service_cidr" ||
  say "network cleanup reported an error (see above); continuing"

say "[5/6] removing our links in /usr/local/bin"
# They belong to the default cluster (up.sh makes them for any, but other
# clusters on this machine may still use them).
[ "$data_dir" = "$(readlink -m "$default_data_dir")" ] || say "not the default data dir: links kept"
[ "$data_dir" = "$(readlink -m "$default_data_dir")" ] && for name in skiff kubectl; do
  link="/usr/local/bin/$name"
  if [ -L "$link" ] && [[ "$(readlink "$link")" == "$SKIFF_ROOT/"* ]]; then rm -f "$link"; fi
done

say "[6/6] deleting $data_dir"
rm -rf "$data_dir"
say "done"
