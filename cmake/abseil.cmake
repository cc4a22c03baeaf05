# Abseil: Debian's libabsl-dev (20220623), or one unpacked from carried .deb files on a GPU machine
# (put its usr/ folder in CMAKE_PREFIX_PATH). Debian's release predates ABSL_RETURN_IF_ERROR, hence
# engine/status_macros.h.
find_package(absl CONFIG REQUIRED)
