#!/usr/bin/env bash
# Usage: install_consumer.sh BUILD_DIR WORK_DIR
# Installs the built pflow into WORK_DIR/prefix (cmake --install), then configures, builds and
# runs tests/consumer, a program outside the project that finds it with find_package(pflow) and
# links pflow::pflow.
set -euo pipefail
build=$1 work=$2/install_consumer
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/include/pflow/pflow.hpp" || { echo "no umbrella header installed"; exit 1; }
# The compiler the library was built with.
compiler=$(sed -n 's/^set(CMAKE_CXX_COMPILER "\(.*\)")$/\1/p' "$build"/CMakeFiles/*/CMakeCXXCompiler.cmake | head -1)
cmake -S "$here/consumer" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/build/consumer"

# Added as a subproject (add_subdirectory), pflow builds its libraries but not its tests.
mkdir -p "$work/sub"
cat > "$work/sub/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(pflow_parent CXX)
add_subdirectory("$(cd "$here/.." && pwd)" pflow)
CMAKE
cmake -S "$work/sub" -B "$work/sub/build" -G Ninja -DCMAKE_CXX_COMPILER="$compiler" > "$work/sub.log"
# The target list in a variable first: `ninja ... | grep -q` under pipefail fails at random when
# grep exits at its first match and ninja dies of SIGPIPE.
targets=$(ninja -C "$work/sub/build" -t targets all)
grep -q "libpflow.a" <<<"$targets" || { echo "subproject: no pflow library"; exit 1; }
if grep -q "pflow_tests" <<<"$targets"; then
  echo "subproject: pflow's tests are built"; exit 1
fi
echo "subproject: pflow's libraries without its tests"
