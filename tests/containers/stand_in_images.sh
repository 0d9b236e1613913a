#!/usr/bin/env bash
# Local stand-ins for the two base images the project's Dockerfile and docker-compose.yml name,
# for machines that run a Docker engine but cannot reach a container registry (CI here).
#
#   python:3.11-slim  Debian bookworm (Python 3.11) with a venv at /usr/local, so that
#                     /usr/local/bin/python and pip are where the official image has them.
#   redis:7-alpine    Debian bookworm's redis-server behind an entrypoint that does what the
#                     official image's does: redis-server and redis-cli on PATH, data in /data,
#                     protected mode off when started without a config file, runs as user redis.
#
# Each image is built once per machine and skipped when an image of that name exists; pass
# --force to rebuild. Debian packages come from the machine's apt mirror. Never pulls an image.
set -euo pipefail

MIRROR="${STAND_IN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
CA_BUNDLE="${STAND_IN_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

present() {
  [[ $FORCE == 0 ]] && docker image inspect "$1" >/dev/null 2>&1
}

# debootstrap --variant=minbase with extra packages into $2, then trimmed of what images never carry.
bootstrap() {
  local packages=$1 rootfs=$2
  debootstrap --variant=minbase --include="$packages" "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    return 1
  }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
    "$rootfs"/usr/share/man "$rootfs"/usr/share/info
}

import_image() {
  local rootfs=$1 name=$2
  shift 2
  tar -C "$rootfs" -c . | docker import "$@" \
    -c 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/bin:/usr/sbin:/sbin' \
    -c 'LABEL org.frameio-kit.stand-in=1' - "$name" >/dev/null
  echo "stand-in $name: $(docker image inspect -f '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1/1e6}')"
}

python_image() {
  local rootfs=$1/python
  bootstrap python3,python3-venv,ca-certificates "$rootfs"
  chroot "$rootfs" python3 -m venv /usr/local
  # The machine's CA bundle: pip reaches the package index through whatever TLS proxy the host trusts.
  cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  import_image "$rootfs" python:3.11-slim -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]'
}

redis_image() {
  local rootfs=$1/redis
  bootstrap redis-server,redis-tools "$rootfs"
  mkdir -p "$rootfs/data"
  chroot "$rootfs" chown redis:redis /data
  cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# The official redis image's entrypoint, in substance: options alone mean redis-server, drop to
# user redis, and protected mode off unless a config file says otherwise (the container's network
# is the boundary; Debian's redis-server would refuse every client from another container).
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = "redis-server" ] && [ "$(id -u)" = "0" ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$1" = "redis-server" ]; then
  if ! { [ -f "${2:-}" ] && grep -q '^protected-mode' "$2"; }; then
    set -- "$@" --protected-mode no
  fi
fi
exec "$@"
EOF
  chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
  import_image "$rootfs" redis:7-alpine \
    -c 'WORKDIR /data' -c 'VOLUME /data' -c 'EXPOSE 6379' \
    -c 'ENTRYPOINT ["docker-entrypoint.sh"]' -c 'CMD ["redis-server"]'
}

main() {
  command -v debootstrap >/dev/null || {
    echo "debootstrap is missing: apt-get install debootstrap" >&2
    exit 1
  }
  docker info >/dev/null 2>&1 || {
    echo "no Docker engine answers (docker info)" >&2
    exit 1
  }
  local work
  work=$(mktemp -d /var/tmp/frameio-kit-stand-ins.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  local pids=()
  # The two bootstraps are independent: run them side by side.
  if present python:3.11-slim; then echo "stand-in python:3.11-slim: present"; else python_image "$work" & pids+=($!); fi
  if present redis:7-alpine; then echo "stand-in redis:7-alpine: present"; else redis_image "$work" & pids+=($!); fi
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  exit $failed
}

main
