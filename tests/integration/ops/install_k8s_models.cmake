# ctest fixture: installs the npm packages the manifest schema test needs into PREFIX (a folder of
# the build tree): kubernetes-models (the Kubernetes API schemas), the prometheus-operator models
# (ServiceMonitor) and js-yaml. Skips the download when those exact versions are there. A failed
# install fails the test with npm's message; nothing is skipped silently.
#   cmake -DNPM=/usr/bin/npm -DPREFIX=<build>/npm-k8s -P install_k8s_models.cmake
set(packages kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0 js-yaml@4.1.0)
set(all_present TRUE)
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
  message(FATAL_ERROR "npm was not found when the build was configured: the manifest schema test "
                      "needs Node.js and npm (Debian nodejs, npm) to install ${packages}")
endif()
file(MAKE_DIRECTORY "${PREFIX}")
execute_process(
  COMMAND "${NPM}" install --no-save --no-audit --no-fund --prefix "${PREFIX}" ${packages}
  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output TIMEOUT 240)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "npm could not install ${packages} into ${PREFIX} (exit ${result}); the "
                      "schema test needs the npm registry (https://registry.npmjs.org). npm said:\n"
                      "${output}")
endif()
message(STATUS "installed ${packages} into ${PREFIX}")
