# GoogleTest/gMock and Google Benchmark from Debian.
# speechllm_add_test(NAME SOURCES a.cc b.cc LIBS x y LABELS unit [ENVIRONMENT K=V ...] [TIMEOUT s])
find_package(GTest REQUIRED)
find_package(benchmark REQUIRED)
include(GoogleTest)

function(speechllm_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ENVIRONMENT" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gmock GTest::gtest GTest::gtest_main)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT} ENVIRONMENT "${T_ENVIRONMENT}"
               SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
    DISCOVERY_TIMEOUT 60)
endfunction()
