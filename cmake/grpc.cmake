# gRPC 1.51 and protobuf 3.21 from Debian (libgrpc++-dev, libprotobuf-dev, protobuf-compiler-grpc).
# Protobuf is found in module mode (CMake's FindProtobuf): Debian ships no protobuf-config.cmake.
# gRPC comes through its own CMake config. Not included in engine-only builds.
# Targets: protobuf::libprotobuf, protobuf::protoc, gRPC::grpc++, gRPC::grpc++_reflection,
# gRPC::grpc_cpp_plugin. Generated code belongs in an OBJECT library (see proto/CMakeLists.txt).
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
foreach(target protobuf::libprotobuf protobuf::protoc gRPC::grpc++ gRPC::grpc_cpp_plugin)
  if(NOT TARGET ${target})
    message(FATAL_ERROR "grpc.cmake: ${target} not found; run scripts/setup_debian.sh")
  endif()
endforeach()
message(STATUS "speechllm: protobuf ${Protobuf_VERSION}, gRPC ${gRPC_VERSION}")
