#!/usr/bin/env bash
# Profile-guided release build of routeproof.
#
#   deploy/build-pgo.sh [--train MANIFESTS_DIR LOG_FILE]...
#
# 1. generates training logs with the replay bench's generator (Envoy Gateway
#    JSON: the default 24-key format, the compact 12-key one, and both inside
#    Fluent Bit and Vector envelopes), each from its own seed: never seed 0,
#    the file the bench measures;
# 2. builds an instrumented `routeproof` (-Cprofile-generate) and runs `replay`
#    on those logs, on the demo set and on every `--train` pair given (your own
#    manifests and logs: add them when your gateways log another format, whose
#    decoder the generated logs leave cold in the profile);
# 3. merges the profile with llvm-profdata and builds `routeproof` again with
#    -Cprofile-use.
#
# Result: $CARGO_TARGET_DIR/pgo/routeproof (default target/pgo/routeproof) and
# the profile beside it (routeproof-<content hash>.profdata). Measure it with
#   RP_BENCH_BIN=target/pgo/routeproof cargo bench --bench replay_vs_duckdb
#
# Needs llvm-profdata from LLVM 19 or newer (rustc 1.95 is LLVM 22; LLVM 19 reads
# its raw profiles): $LLVM_PROFDATA, else rustup's llvm-tools component, else
# /usr/lib/llvm-NN/bin/llvm-profdata (Debian: `apt-get install llvm-19`).
# Training lines: $RP_PGO_LINES per generated log (default 200000).
set -euo pipefail

extra_train=()
while [ $# -gt 0 ]; do
  case "$1" in
    --train)
      [ $# -ge 3 ] || { echo "--train needs MANIFESTS_DIR LOG_FILE" >&2; exit 2; }
      [ -d "$2" ] || { echo "--train: $2 is not a directory" >&2; exit 2; }
      [ -f "$3" ] || { echo "--train: $3 is not a file" >&2; exit 2; }
      extra_train+=("$(realpath "$2")" "$(realpath "$3")")
      shift 3 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Paths given relative to where the script was started, then the repository.
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-$(dirname "$0")/../target}")
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
out_dir="$target_dir/pgo"
lines="${RP_PGO_LINES:-200000}"

# llvm-profdata that reads this rustc's raw profiles (format version 10: LLVM >= 19).
find_profdata() {
  if [ -n "${LLVM_PROFDATA:-}" ]; then echo "$LLVM_PROFDATA"; return; fi
  local tool
  tool="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
  if [ -x "$tool" ]; then echo "$tool"; return; fi
  # The newest of Debian's versioned LLVMs.
  local best="" best_major=0 major
  for tool in /usr/lib/llvm-*/bin/llvm-profdata; do
    [ -x "$tool" ] || continue
    major=${tool#/usr/lib/llvm-}
    major=${major%%/*}
    case "$major" in *[!0-9]*|"") continue ;; esac
    if [ "$major" -ge 19 ] && [ "$major" -gt "$best_major" ]; then
      best=$tool
      best_major=$major
    fi
  done
  echo "$best"
}
profdata=$(find_profdata)
if [ -z "$profdata" ]; then
  echo "no llvm-profdata from LLVM >= 19: set LLVM_PROFDATA, or run" >&2
  echo "  rustup component add llvm-tools   (or, on Debian: apt-get install llvm-19)" >&2
  exit 1
fi
echo "== llvm-profdata: $profdata"

work=$(mktemp -d -t routeproof-pgo.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== training logs ($lines lines each, generator seeds 1-4)"
generate() { # seed shape envelope lines
  RP_BENCH_ONLY_GENERATE=1 RP_BENCH_SEED="$1" RP_BENCH_SHAPE="$2" RP_BENCH_ENVELOPE="$3" \
    RP_BENCH_LINES="$4" RP_BENCH_DIR="$work/train-$1" \
    cargo bench --locked --bench replay_vs_duckdb >"$work/generate.log" 2>&1 \
    || { cat "$work/generate.log" >&2; exit 1; }
  train+=("$work/train-$1/manifests" "$work/train-$1/envoy-gateway.log")
}
train=()
generate 1 default none "$lines"
generate 2 compact none "$lines"
generate 3 default fluent-bit "$((lines / 2))"
generate 4 compact vector "$((lines / 2))"
train+=("$PWD/demo/manifests" "$PWD/demo/logs/envoy-gateway.log")
train+=("${extra_train[@]}")

# `--target` keeps RUSTFLAGS off build scripts and proc macros; each stage has
# its own target directory so a rerun rebuilds only what changed.
build() { # stage rustflags
  RUSTFLAGS="${RUSTFLAGS:-} $2" cargo build --locked --release --bin routeproof \
    --target "$host" --target-dir "$target_dir/pgo-$1"
}

# Fixed path: the instrumented build's flags stay the same from run to run.
raw="$target_dir/pgo-generate/profraw"
echo "== instrumented build"
build generate "-Cprofile-generate=$raw"
rm -rf "$raw"
for ((i = 0; i < ${#train[@]}; i += 2)); do
  echo "== training: replay ${train[i+1]}"
  "$target_dir/pgo-generate/$host/release/routeproof" replay --manifests "${train[i]}" \
    --input "${train[i+1]}" --out "$work/out-$i" >/dev/null
  rm -rf "$work/out-$i"
done
"$profdata" merge -o "$work/routeproof.profdata" "$raw"
# Named by its content: Cargo tracks the flags, not the file they name, so a
# new profile must change the flags to rebuild every crate with it.
mkdir -p "$out_dir"
rm -f "$out_dir"/routeproof-*.profdata
profile="$out_dir/routeproof-$(sha256sum "$work/routeproof.profdata" | cut -c1-16).profdata"
cp "$work/routeproof.profdata" "$profile"

echo "== optimized build"
build use "-Cprofile-use=$profile"
cp "$target_dir/pgo-use/$host/release/routeproof" "$out_dir/routeproof"
echo "built $out_dir/routeproof (profile: $profile)"
