# KcovRuntime: the kcov hosted runtime, as installed in the `kcov` package.
#   find_package(KcovRuntime CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE KcovRuntime::kcovrt)         # shared
#   target_link_libraries(app PRIVATE KcovRuntime::kcovrt_static)  # static, PIC
# Compile instrumented sources with KcovRuntime_COVERAGE_FLAGS.
get_filename_component(_kcov_lib "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
get_filename_component(_kcov_inc "${_kcov_lib}/../include" ABSOLUTE)

if(NOT TARGET KcovRuntime::kcovrt)
  add_library(KcovRuntime::kcovrt SHARED IMPORTED)
  set_target_properties(KcovRuntime::kcovrt PROPERTIES
    IMPORTED_LOCATION "${_kcov_lib}/libkcovrt.so"
    INTERFACE_INCLUDE_DIRECTORIES "${_kcov_inc}")
  add_library(KcovRuntime::kcovrt_static STATIC IMPORTED)
  set_target_properties(KcovRuntime::kcovrt_static PROPERTIES
    IMPORTED_LOCATION "${_kcov_lib}/libkcovrt.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_kcov_inc}"
    INTERFACE_LINK_LIBRARIES "pthread")
endif()

set(KcovRuntime_INCLUDE_DIR "${_kcov_inc}")
set(KcovRuntime_LIBRARY_DIR "${_kcov_lib}")
set(KcovRuntime_PRELOAD "${_kcov_lib}/libkcov-preload.so")
set(KcovRuntime_COVERAGE_FLAGS -fsanitize-coverage=trace-pc,trace-cmp)
set(KcovRuntime_FOUND TRUE)
unset(_kcov_lib)
unset(_kcov_inc)
