# Sanitizer and fuzzing builds (scripts/test --sanitize, scripts/fuzz). Included from the root
# CMakeLists.txt before any target, so the flags reach the library, the tests and the program.
#
#   -DCMAKE_BUILD_TYPE=Sanitize   AddressSanitizer + UndefinedBehaviorSanitizer, -O1, asserts on;
#                                 any finding aborts the process (-fno-sanitize-recover=all).
#                                 Debug info is line tables only (file:line in every report's stack
#                                 trace): full -g costs ~30% more compile time on these
#                                 template-heavy sources and adds nothing to a sanitizer report.
#   -DPFLOW_FUZZ=ON               (clang only) also instruments everything for libFuzzer and adds
#                                 the fuzz_config target (tests/fuzz); use with Sanitize

set(_pflow_sanitize "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer")
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(_pflow_line_tables "-gline-tables-only")
else()
  set(_pflow_line_tables "-g1")
endif()
foreach(lang C CXX)
  set(CMAKE_${lang}_FLAGS_SANITIZE "-O1 ${_pflow_line_tables} ${_pflow_sanitize}")
endforeach()
foreach(kind EXE SHARED MODULE)
  set(CMAKE_${kind}_LINKER_FLAGS_SANITIZE "-fsanitize=address,undefined")
endforeach()

option(PFLOW_FUZZ "Build the libFuzzer targets (clang, with CMAKE_BUILD_TYPE=Sanitize)" OFF)
if(PFLOW_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "PFLOW_FUZZ needs clang++ (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
  endif()
  if(NOT CMAKE_BUILD_TYPE STREQUAL "Sanitize")
    message(FATAL_ERROR "PFLOW_FUZZ needs -DCMAKE_BUILD_TYPE=Sanitize")
  endif()
  # Coverage instrumentation for everything; only the fuzz targets link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
