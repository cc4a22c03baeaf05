# ctest helper: runs TOOL with ARGS ("|"-separated) and fails with the package to install when the
# tool was not found at configure time, or with the tool's exit code when it fails.
#   cmake -DTOOL=/usr/bin/yamllint -DPACKAGE=yamllint "-DARGS=a|b" -P run_tool.cmake
if(NOT TOOL OR NOT EXISTS "${TOOL}")
  message(FATAL_ERROR "a required tool was not found when the build was configured (${TOOL}): "
                      "install the Debian package ${PACKAGE} (scripts/setup_debian.sh does) and "
                      "re-run cmake")
endif()
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND "${TOOL}" ${args} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${TOOL} ${args} exited with ${result}")
endif()
message(STATUS "${TOOL} passed")
