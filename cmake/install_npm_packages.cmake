# ctest fixture script: installs npm packages (exact versions) into PREFIX, a folder of the build
# tree, so nothing lands in the source tree. Skips the download when every package is already there
# at its version (and REQUIRED_FILE exists). A failed install fails the fixture with npm's message;
# nothing is skipped silently. Used by the tokenizer reference, buf curl and manifest schema tests.
#   cmake -DNPM=/usr/bin/npm -DPREFIX=<build>/npm -DPACKAGES=name@1.0.0,other@2.0.0 -DFOR="the X test"
#         [-DREQUIRED_FILE=node_modules/...] [-DVERSION_COMMAND=node_modules/.bin/tool]
#         -P install_npm_packages.cmake
string(REPLACE "," ";" packages "${PACKAGES}")
set(all_present TRUE)
if(REQUIRED_FILE AND NOT EXISTS "${PREFIX}/${REQUIRED_FILE}")
  set(all_present FALSE)
endif()
foreach(spec IN LISTS packages)
  string(REGEX REPLACE "@([^@]+)$" "" name "${spec}")
  string(REGEX REPLACE "^.*@" "" version "${spec}")
  set(manifest "${PREFIX}/node_modules/${name}/package.json")
  if(EXISTS "${manifest}")
    file(READ "${manifest}" json)
    string(JSON installed GET "${json}" version)
    if(NOT installed STREQUAL version)
      set(all_present FALSE)
    endif()
  else()
    set(all_present FALSE)
  endif()
endforeach()
if(all_present)
  message(STATUS "${packages} already installed in ${PREFIX}")
  return()
endif()
if(NOT NPM)
  message(FATAL_ERROR "npm was not found when the build was configured: ${FOR} needs Node.js and "
                      "npm (Debian nodejs, npm) to install ${packages}")
endif()
file(MAKE_DIRECTORY "${PREFIX}")
execute_process(
  COMMAND "${NPM}" install --no-save --no-audit --no-fund --prefix "${PREFIX}" ${packages}
  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output TIMEOUT 240)
if(NOT result EQUAL 0 OR (REQUIRED_FILE AND NOT EXISTS "${PREFIX}/${REQUIRED_FILE}"))
  message(FATAL_ERROR "npm could not install ${packages} into ${PREFIX} (exit ${result}); ${FOR} "
                      "needs the npm registry (https://registry.npmjs.org). npm said:\n${output}")
endif()
set(tool_version "")
if(VERSION_COMMAND)
  execute_process(COMMAND "${PREFIX}/${VERSION_COMMAND}" --version RESULT_VARIABLE result
                  OUTPUT_VARIABLE tool_version ERROR_VARIABLE tool_version)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${PREFIX}/${VERSION_COMMAND} --version failed (exit ${result}): ${tool_version}")
  endif()
endif()
string(STRIP "${tool_version}" tool_version)
message(STATUS "installed ${packages} ${tool_version} into ${PREFIX}")
