# find_package(sofie [version]): the version comes from the package's version.py, its one place.
# Compatible as write_basic_package_version_file would say with SameMinorVersion for 0.x
# releases (each may change the C++ interface) and SameMajorVersion from 1.0 on.
file(STRINGS "${CMAKE_CURRENT_LIST_DIR}/../version.py" _sofie_line REGEX "^__version__")
string(REGEX MATCH "[0-9]+(\\.[0-9]+)*" PACKAGE_VERSION "${_sofie_line}")

set(PACKAGE_VERSION_COMPATIBLE FALSE)
string(REGEX MATCHALL "[0-9]+" _sofie_parts "${PACKAGE_VERSION}.0")
list(GET _sofie_parts 0 _sofie_major)
list(GET _sofie_parts 1 _sofie_minor)
set(_sofie_want_minor "${PACKAGE_FIND_VERSION_MINOR}")
if(_sofie_want_minor STREQUAL "")
  set(_sofie_want_minor 0)
endif()
if(NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION
   AND _sofie_major EQUAL PACKAGE_FIND_VERSION_MAJOR
   AND (_sofie_major GREATER 0 OR _sofie_minor EQUAL _sofie_want_minor))
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
  set(PACKAGE_VERSION_EXACT TRUE)
endif()
