# ctest fixture: installs npm @bufbuild/buf (buf curl, the grpcurl replacement of API.md section 8)
# into PREFIX, a folder of the build tree. Skips the download when that exact version is already
# there. A failed install is a test failure with the reason, never a silent skip.
#   cmake -DNPM=/usr/bin/npm -DPREFIX=<build>/npm-buf -DPACKAGE=@bufbuild/buf -DVERSION=1.75.0 -P install_buf.cmake
set(package_json "${PREFIX}/node_modules/${PACKAGE}/package.json")
set(buf_bin "${PREFIX}/node_modules/.bin/buf")
if(EXISTS "${package_json}" AND EXISTS "${buf_bin}")
  file(READ "${package_json}" manifest)
  string(JSON installed_version GET "${manifest}" version)
  if(installed_version STREQUAL VERSION)
    message(STATUS "${PACKAGE}@${VERSION} already installed in ${PREFIX}")
    return()
  endif()
endif()
if(NOT NPM)
  message(FATAL_ERROR "npm was not found when the build was configured: the buf curl test needs "
                      "it (Node 20 + npm) to install ${PACKAGE}@${VERSION}")
endif()
file(MAKE_DIRECTORY "${PREFIX}")
execute_process(
  COMMAND "${NPM}" install --no-save --no-audit --no-fund --prefix "${PREFIX}" "${PACKAGE}@${VERSION}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output
  TIMEOUT 240)
if(NOT result EQUAL 0 OR NOT EXISTS "${buf_bin}")
  message(FATAL_ERROR "npm could not install ${PACKAGE}@${VERSION} into ${PREFIX} (exit ${result}). "
                      "The buf curl test needs the npm registry (https://registry.npmjs.org). npm said:\n${output}")
endif()
execute_process(COMMAND "${buf_bin}" --version RESULT_VARIABLE result OUTPUT_VARIABLE version
                ERROR_VARIABLE version)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${buf_bin} --version failed (exit ${result}): ${version}")
endif()
message(STATUS "installed ${PACKAGE}@${VERSION} (buf ${version}) into ${PREFIX}")
