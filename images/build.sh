#!/usr/bin/env bash
# Builds Skiff's offline container images as OCI image tarballs, from the
# machine's Debian binaries, with no registry and no network:
#
#   pause.tar    localhost/skiff/pause:3.10           (images/pause/pause.c, static)
#   busybox.tar  docker.io/library/busybox:latest     (busybox-static)
#   redis.tar    docker.io/library/redis:latest       (redis-server + the libraries it loads)
#   nginx.tar    docker.io/library/nginx:latest       (Debian's nginx + its libraries, upstream's
#                                                      default site on port 80; no access log)
#
# busybox, redis and nginx carry the names upstream examples use, so unmodified
# manifests saying `image: busybox`, `image: redis` or `image: nginx` run offline. The pause
# image is named under `localhost/` on purpose: if it were ever missing, a pull
# would go to this machine and fail, never out to a public registry.
#
# Each tarball is an OCI image layout (oci-layout, index.json, blobs/sha256/)
# whose index names the image with containerd's io.containerd.image.name
# annotation, so `ctr -n k8s.io images import` gives it its full name.
#
# Usage: images/build.sh OUT_DIR [pause|busybox|redis|nginx ...]
# Idempotent and cached by content: an image is rebuilt only when this script,
# its sources or the binaries it packs changed (OUT_DIR/<image>.key).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: images/build.sh OUT_DIR [image...]}"
shift
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(pause busybox redis nginx)
mkdir -p "$out"
out="$(cd "$out" && pwd)"

log() { echo "skiff images: $*" >&2; }
need() { command -v "$1" >/dev/null || { log "missing $1 (Debian package $2)"; exit 1; }; }

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Shared libraries (and the dynamic loader) a binary loads, as absolute paths.
libs_of() {
  ldd "$1" | awk '/=> \//{print $3} /^\s*\/lib/{print $1}' | sort -u
}

# The files that go into each image, for the cache key and the rootfs.
inputs() {
  case "$1" in
    pause) echo "$here/pause/pause.c" ;;
    busybox) echo /bin/busybox ;;
    redis)
      echo /bin/busybox
      for bin in /usr/bin/redis-server /usr/bin/redis-cli; do
        readlink -f "$bin"
        libs_of "$bin"
      done | sort -u
      ;;
    nginx)
      echo /bin/busybox /etc/nginx/mime.types
      readlink -f /usr/sbin/nginx
      libs_of /usr/sbin/nginx
      ;;
  esac
}

# Installs busybox and a link per applet (sh, ls, cat, nc, httpd...) into a rootfs.
install_busybox() {
  local root="$1"
  mkdir -p "$root/bin"
  cp /bin/busybox "$root/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
}

# The minimal /etc every image has: root and nobody, as in upstream's busybox image.
install_etc() {
  local root="$1"
  mkdir -p "$root/etc" "$root/tmp" "$root/root"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
}

# Fills a rootfs and prints the image's name and its config's "config" object.
populate() {
  local name="$1" root="$2"
  case "$name" in
    pause)
      gcc -static -Os -s -o "$root/pause" "$here/pause/pause.c"
      echo 'localhost/skiff/pause:3.10'
      echo '{"Entrypoint":["/pause"],"WorkingDir":"/"}'
      ;;
    busybox)
      install_etc "$root"
      install_busybox "$root"
      echo 'docker.io/library/busybox:latest'
      echo '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}'
      ;;
    redis)
      install_etc "$root"
      install_busybox "$root"
      mkdir -p "$root/usr/bin" "$root/data"
      cp "$(readlink -f /usr/bin/redis-server)" "$root/usr/bin/redis-server"
      cp "$(readlink -f /usr/bin/redis-cli)" "$root/usr/bin/redis-cli"
      local lib
      for lib in $(libs_of /usr/bin/redis-server; libs_of /usr/bin/redis-cli); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
      done
      # The loader is looked up at /lib64 on amd64 whatever ldd printed.
      if [ -e /lib64/ld-linux-x86-64.so.2 ] && [ ! -e "$root/lib64/ld-linux-x86-64.so.2" ]; then
        mkdir -p "$root/lib64"
        cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
      fi
      # Upstream's image serves clients from anywhere (protected mode off) out
      # of /data on 6379; Debian's binary without a config file would refuse
      # remote clients, hence the flag.
      echo 'docker.io/library/redis:latest'
      echo '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["redis-server","--protected-mode","no"],"WorkingDir":"/data","ExposedPorts":{"6379/tcp":{}}}'
      ;;
    nginx)
      install_etc "$root"
      install_busybox "$root"
      mkdir -p "$root/usr/sbin" "$root/etc/nginx" "$root/usr/share/nginx/html" "$root/var/log/nginx" "$root/run"
      mkdir -p "$root"/var/lib/nginx/{body,fastcgi,proxy,scgi,uwsgi}
      cp "$(readlink -f /usr/sbin/nginx)" "$root/usr/sbin/nginx"
      local lib
      for lib in $(libs_of /usr/sbin/nginx); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
      done
      if [ -e /lib64/ld-linux-x86-64.so.2 ] && [ ! -e "$root/lib64/ld-linux-x86-64.so.2" ]; then
        mkdir -p "$root/lib64"
        cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
      fi
      cp /etc/nginx/mime.types "$root/etc/nginx/mime.types"
      # Upstream's default site (port 80, /usr/share/nginx/html) with its
      # worker settings; no access log, which upstream's image writes to
      # stdout for every request (a load test would measure the log).
      cat >"$root/etc/nginx/nginx.conf" <<'CONF'
user nobody;
worker_processes auto;
error_log /dev/stderr notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  keepalive_timeout 65;
  server {
    listen 80;
    server_name localhost;
    location / { root /usr/share/nginx/html; index index.html index.htm; }
  }
}
CONF
      printf '<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1></body></html>\n' >"$root/usr/share/nginx/html/index.html"
      echo 'docker.io/library/nginx:latest'
      echo '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["nginx","-g","daemon off;"],"ExposedPorts":{"80/tcp":{}},"StopSignal":"SIGQUIT"}'
      ;;
  esac
}

# Writes a blob into the layout and prints "<digest> <size>".
add_blob() {
  local layout="$1" file="$2" digest size
  digest="$(sha "$file")"
  size="$(stat -c %s "$file")"
  mv "$file" "$layout/blobs/sha256/$digest"
  echo "$digest $size"
}

build() {
  local name="$1" key work root image config
  case "$name" in
    pause) need gcc gcc ;;
    busybox) [ -x /bin/busybox ] || { log "missing /bin/busybox (Debian package busybox-static)"; exit 1; } ;;
    redis) need redis-server redis-server ;;
    nginx) [ -x /usr/sbin/nginx ] || { log "missing /usr/sbin/nginx (Debian package nginx)"; exit 1; } ;;
    *) log "unknown image $name"; exit 2 ;;
  esac
  key="$({ sha "${BASH_SOURCE[0]}"; for f in $(inputs "$name"); do sha "$f"; done; } | sha256sum | cut -d' ' -f1)"
  if [ -f "$out/$name.tar" ] && [ "$(cat "$out/$name.key" 2>/dev/null)" = "$key" ]; then
    return 0
  fi
  log "building $name"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  root="$work/rootfs"
  mkdir -p "$root" "$work/layout/blobs/sha256"
  { read -r image; read -r config; } < <(populate "$name" "$root")

  # One uncompressed layer, reproducible: sorted names, fixed owners and times.
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/layer.tar" .
  local layer layer_digest layer_size
  layer="$(add_blob "$work/layout" "$work/layer.tar")"
  layer_digest="${layer% *}"
  layer_size="${layer#* }"

  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"skiff images/build.sh %s"}]}' \
    "$config" "$layer_digest" "$name" >"$work/config.json"
  local cfg cfg_digest cfg_size
  cfg="$(add_blob "$work/layout" "$work/config.json")"
  cfg_digest="${cfg% *}"
  cfg_size="${cfg#* }"

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$cfg_digest" "$cfg_size" "$layer_digest" "$layer_size" >"$work/manifest.json"
  local mf mf_digest mf_size
  mf="$(add_blob "$work/layout" "$work/manifest.json")"
  mf_digest="${mf% *}"
  mf_size="${mf#* }"

  printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$mf_digest" "$mf_size" "$image" "${image##*:}" >"$work/layout/index.json"

  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/layout" -cf "$out/$name.tar.tmp" .
  mv "$out/$name.tar.tmp" "$out/$name.tar"
  echo "$key" >"$out/$name.key"
  log "built $image -> $out/$name.tar ($(du -h "$out/$name.tar" | cut -f1))"
}

for name in "${wanted[@]}"; do
  build "$name"
done
