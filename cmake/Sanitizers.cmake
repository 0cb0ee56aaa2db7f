# Sanitizer and fuzzing builds (scripts/test --sanitize, scripts/fuzz). Included from the root
# CMakeLists.txt before any target, so the flags reach the library, the tests and the program.
#
#   -DCMAKE_BUILD_TYPE=Sanitize   AddressSanitizer + UndefinedBehaviorSanitizer, -O1, asserts on;
#                                 any finding aborts the process (-fno-sanitize-recover=all).
#                                 Debug info is line tables only (file:line in every report's stack
#                                 trace): full -g costs ~30% more compile time on these
#                                 template-heavy sources and adds nothing to a sanitizer report.
#   PFLOW_FUZZ (ON)               with Sanitize and clang, also the libFuzzer target (below)

set(_pflow_sanitize "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer")
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(_pflow_line_tables "-gline-tables-only")
else()
  set(_pflow_line_tables "-g1")
endif()
# A build type NAME: its compile flags (after -O1 and line tables) and its link flags.
macro(pflow_sanitizer_build_type name compile link)
  foreach(lang C CXX)
    set(CMAKE_${lang}_FLAGS_${name} "-O1 ${_pflow_line_tables} ${compile}")
  endforeach()
  foreach(kind EXE SHARED MODULE)
    set(CMAKE_${kind}_LINKER_FLAGS_${name} "${link}")
  endforeach()
endmacro()
pflow_sanitizer_build_type(SANITIZE "${_pflow_sanitize}" "-fsanitize=address,undefined")
# -DCMAKE_BUILD_TYPE=Tsan: ThreadSanitizer, -O1, line tables (scripts/test --tsan, which builds the
# program and the test program only and runs the threaded tests: README "Reliability").
pflow_sanitizer_build_type(TSAN "-fsanitize=thread -fno-omit-frame-pointer" "-fsanitize=thread")

# libFuzzer: a Sanitize build with clang also builds the fuzz target (tests/fuzz/fuzz_config),
# with the config layer (pflow_config) instrumented for coverage, so scripts/fuzz reuses the
# sanitizer build of scripts/test --sanitize. -DPFLOW_FUZZ=OFF leaves it out.
option(PFLOW_FUZZ "Build the libFuzzer target in Sanitize builds with clang" ON)
if(PFLOW_FUZZ AND CMAKE_BUILD_TYPE STREQUAL "Sanitize" AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(PFLOW_FUZZ_INSTRUMENT ON)
else()
  set(PFLOW_FUZZ_INSTRUMENT OFF)
endif()
