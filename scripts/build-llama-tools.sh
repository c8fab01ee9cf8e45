#!/usr/bin/env bash
# Builds llama.cpp's own reference tools (llama-bench, llama-batched-bench, llama-server) from the llama.cpp source
# that node-llama-cpp bundles, linked against an installed build of that same release (by default the sm_90 CUDA
# build unpacked from ../shared/gpu), so the GPU benchmark can run llama.cpp beside rbee in the same run.
# Only the tools are compiled (C++, no CUDA): llama.cpp and ggml stay the given build's libraries.
#
#   bash scripts/build-llama-tools.sh LIBS_DIR OUT_DIR
#
# LIBS_DIR holds libllama.*so, libggml.*so, libggml-base.so and libllama-common.so; OUT_DIR gets the three tools
# (rpath $ORIGIN: copy them beside the libraries, where ggml also looks for its dynamically loaded backends).
set -euo pipefail
libs=$(realpath "${1:?libs dir}")
out=$(mkdir -p "${2:?out dir}" && realpath "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
# The llama.cpp clone scripts/build-addon.ts keeps (the same bundle), made here if that has not run.
src=$root/node_modules/.cache/rbee-addon/llama.cpp
work=$root/node_modules/.cache/llama-tools
jobs=$(nproc)

if [ ! -f "$src/include/llama.h" ]; then
  rm -rf "$src"
  git -c advice.detachedHead=false clone --quiet "$root/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$src"
fi
mkdir -p "$work/gen"

# The web UI is not needed for benchmarking: an empty asset table.
sed -e 's/#cmakedefine LLAMA_UI_HAS_ASSETS 1//' -e 's/@N_ASSETS@/0/g' "$src/tools/ui/ui.h.in" >"$work/gen/ui.h"
sed -e 's/@ASSET_ARRAYS@//' -e 's/@ASSET_TABLE@//' -e 's/@N_ASSETS@/0/g' -e 's/@USE_GZIP@/false/' \
  "$src/tools/ui/ui.cpp.in" >"$work/gen/ui.cpp"

cd "$src"
mtmd_sources=$(sed -n '/^add_library(mtmd/,/)/p' tools/mtmd/CMakeLists.txt | grep -o '[A-Za-z0-9_./-]*\.cpp' |
  sed 's|^|tools/mtmd/|')
server_sources="tools/server/server-chat.cpp tools/server/server-task.cpp tools/server/server-queue.cpp
  tools/server/server-common.cpp tools/server/server-context.cpp tools/server/server-stream.cpp
  tools/server/server-tools.cpp tools/server/server-mcp.cpp tools/server/server-schema.cpp tools/server/server.cpp
  tools/server/server-http.cpp tools/server/server-models.cpp tools/server/main.cpp vendor/cpp-httplib/httplib.cpp
  vendor/hash/hash.cpp $work/gen/ui.cpp"
bench_sources="tools/llama-bench/llama-bench.cpp tools/llama-bench/main.cpp tools/batched-bench/batched-bench.cpp
  tools/batched-bench/main.cpp"
hash_c_sources="vendor/hash/xxhash/xxhash.c vendor/hash/sha1/sha1.c vendor/hash/sha256/sha256.c"

includes="-Iinclude -Iggml/include -Icommon -Ivendor -Ivendor/cpp-httplib -Itools/mtmd -Itools/server -I. -I$work/gen"
export includes work
compile() {
  local source=$1 object
  object=$work/obj/$(echo "${source#"$work"/}" | tr / _).o
  [ -f "$object" ] && [ "$object" -nt "$source" ] && return 0
  mkdir -p "$work/obj"
  case $source in
    # sha1.c is C++ (a namespace keeps it from clashing with OpenSSL's), as in its CMakeLists
    */sha1.c) g++ -x c++ -O2 -w -fPIC $includes -Ivendor/hash -c "$source" -o "$object" ;;
    *.c) gcc -O2 -w -fPIC $includes -Ivendor/hash -c "$source" -o "$object" ;;
    *) g++ -O2 -std=c++17 -fPIC -Wno-cast-qual $includes -c "$source" -o "$object" ;;
  esac
}
export -f compile
echo $mtmd_sources $server_sources $bench_sources $hash_c_sources | tr ' ' '\n' | grep . |
  xargs -P "$jobs" -I{} bash -c 'compile {}'

object() { echo "$work/obj/$(echo "${1#"$work"/}" | tr / _).o"; }
link_tool() {
  local name=$1
  shift
  g++ "$@" -o "$out/$name" -L"$libs" -l:libllama-common.so $(for lib in "$libs"/libllama.*so "$libs"/libggml.*so "$libs"/libggml-base.so; do echo "-l:$(basename "$lib")"; done) \
    -Wl,--allow-shlib-undefined -Wl,-rpath,'$ORIGIN' -pthread
}
link_tool llama-bench $(object tools/llama-bench/llama-bench.cpp) $(object tools/llama-bench/main.cpp)
link_tool llama-batched-bench $(object tools/batched-bench/batched-bench.cpp) $(object tools/batched-bench/main.cpp)
link_tool llama-server $(for s in $mtmd_sources $server_sources $hash_c_sources; do object "$s"; done)
ls -la "$out"
