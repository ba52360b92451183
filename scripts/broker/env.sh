# Sourced by scripts/test and scripts/bench (from the repository root): where the Kafka-protocol
# test broker lives and how it is built.
#
# The broker is `nisshi` 0.6.0 (published before as `tansu`), the last release that builds with
# this machine's Rust (1.95; later ones need 1.96), built once into a cache outside the
# repository with one patch of its storage crate, `nisshi-storage-0.6.0.patch` (the README's
# "Differences between the test broker and Kafka" says what it changes and why). The cache
# directory's name carries the patch's hash, so a changed patch builds a new broker.

FLUXROUTE_CACHE="${FLUXROUTE_CACHE:-$HOME/.cache/fluxroute}"
BROKER_VERSION=0.6.0
BROKER_PATCH="$PWD/scripts/broker/nisshi-storage-$BROKER_VERSION.patch"
BROKER_ROOT="$FLUXROUTE_CACHE/nisshi-$BROKER_VERSION-$(sha256sum "$BROKER_PATCH" | cut -c1-12)"
BROKER_BIN="$BROKER_ROOT/bin/nisshi"

# Builds the patched broker into $BROKER_ROOT unless it is there (about 20 minutes on 2 cores).
install_broker() {
  [[ -x "$BROKER_BIN" ]] && return 0
  local src="$BROKER_ROOT.src"
  rm -rf "$src" && mkdir -p "$src"
  curl -sSfL --retry 3 "https://static.crates.io/crates/nisshi-storage/nisshi-storage-$BROKER_VERSION.crate" |
    tar xz -C "$src" --strip-components=1
  patch -s -p1 -d "$src" <"$BROKER_PATCH"
  cargo install nisshi --version "$BROKER_VERSION" --locked --features dynostore,libsql \
    --root "$BROKER_ROOT" --config "patch.crates-io.nisshi-storage.path=\"$src\""
  rm -rf "$src"
}
