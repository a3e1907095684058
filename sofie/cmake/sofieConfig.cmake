# sofie's CMake package, installed inside the Python package (`python -m sofie --cmakedir`):
#
#   find_package(sofie CONFIG REQUIRED)        # cmake -Dsofie_DIR=$(python -m sofie --cmakedir) ...
#   sofie_add_model(mlp_model MODEL mlp.onnx [NAME mlp] [BLAS none] [OPTIONS --dim P=32 ...])
#   target_link_libraries(my_app PRIVATE mlp_model)   # #include "mlp.hxx"; TMVA_SOFIE_mlp::Session s;
#
# sofie::runtime        the runtime headers alone (#include "sofie_rt/sofie_rt.hxx"), C++17.
# sofie_add_model()     compiles MODEL with sofie-compile at build time, again whenever the model or
#                       the sofie package changes, into ${CMAKE_CURRENT_BINARY_DIR}/sofie_<NAME>/, and
#                       makes <target> an INTERFACE library carrying that folder, C++17, the BLAS
#                       flags (`sofie-compile --print-flags`) and SOFIE_<NAME>_WEIGHTS, the absolute
#                       path of NAME.dat, so that a default-constructed Session finds its weights
#                       from any working directory. NAME defaults to the model file's stem; BLAS to
#                       the Python's default (openblas with the scipy-openblas32 wheel, else none);
#                       OPTIONS are passed on to sofie-compile.
#
# sofie-compile is run as `<python> -m sofie.tools.compile` with the Python that provides this
# package: the one of the environment it is installed in, else python3 from PATH, if it imports
# this very folder's sofie. -DSOFIE_PYTHON_EXECUTABLE=/path/to/python chooses it instead.
# The repository's own CMakeLists.txt includes this file, so add_subdirectory(<sofie checkout>)
# gives the same targets and function.

if(NOT TARGET sofie::runtime)
  add_library(sofie::runtime INTERFACE IMPORTED GLOBAL)
  set_target_properties(sofie::runtime PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_LIST_DIR}/../runtime"
    INTERFACE_COMPILE_FEATURES cxx_std_17)
endif()

# Cached, not plain variables: sofie_add_model may be called from a directory that does not see
# the scope this file was included in (add_subdirectory(<checkout>) from a sibling project).
get_filename_component(_sofie_package "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(SOFIE_PACKAGE_DIR "${_sofie_package}" CACHE INTERNAL "the sofie Python package this config belongs to")
# Generated code is rebuilt when the compiler or its runtime changes, not only the model:
# every model folder carries a copy of sofie_rt/, and a stale copy must never be found first.
file(GLOB_RECURSE _sofie_sources CONFIGURE_DEPENDS
     "${_sofie_package}/*.py" "${_sofie_package}/runtime/sofie_rt/*.hxx")
set(SOFIE_SOURCES "${_sofie_sources}" CACHE INTERNAL "")

# The Python that imports the sofie of this folder: `python -m sofie --cmakedir` must print it.
function(_sofie_python_provides py out)
  set(${out} FALSE PARENT_SCOPE)
  if(NOT py OR NOT EXISTS "${py}")
    return()
  endif()
  # run in the config folder: `-m` puts the working directory first on sys.path, and a build
  # directory may hold a `sofie` folder of its own
  execute_process(COMMAND "${py}" -m sofie --cmakedir
                  WORKING_DIRECTORY "${SOFIE_PACKAGE_DIR}/cmake"
                  OUTPUT_VARIABLE dir OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0)
    get_filename_component(dir "${dir}" REALPATH)
    get_filename_component(mine "${SOFIE_PACKAGE_DIR}/cmake" REALPATH)
    if(dir STREQUAL mine)
      set(${out} TRUE PARENT_SCOPE)
    endif()
  endif()
endfunction()

function(_sofie_python out)
  # checked once per build tree, again when the Python or the package folder changes
  if(EXISTS "${SOFIE_PYTHON_EXECUTABLE}" AND "${SOFIE_PYTHON_EXECUTABLE}|${SOFIE_PACKAGE_DIR}" STREQUAL _SOFIE_PYTHON_CHECKED)
    set(${out} "${SOFIE_PYTHON_EXECUTABLE}" PARENT_SCOPE)
    return()
  endif()
  set(pkg "${SOFIE_PACKAGE_DIR}")
  if(SOFIE_PYTHON_EXECUTABLE)
    set(candidates "${SOFIE_PYTHON_EXECUTABLE}")
  else()
    get_filename_component(parent "${pkg}/.." NAME)
    if(parent MATCHES "^(site|dist)-packages$")
      # installed: <prefix>/lib/pythonX.Y/site-packages/sofie (POSIX), <prefix>/Lib/site-packages/sofie (Windows)
      set(candidates "${pkg}/../../../../bin/python3" "${pkg}/../../../../bin/python"
                     "${pkg}/../../../Scripts/python.exe" "${pkg}/../../../python.exe")
    else()  # a checkout, maybe with its .venv (`make test` makes one)
      set(candidates "${pkg}/../.venv/bin/python3")
    endif()
    list(APPEND candidates "${Python_EXECUTABLE}" "${Python3_EXECUTABLE}")
    find_program(SOFIE_PATH_PYTHON NAMES python3 python)
    mark_as_advanced(SOFIE_PATH_PYTHON)
    list(APPEND candidates "${SOFIE_PATH_PYTHON}")
  endif()
  set(tried "")
  foreach(py IN LISTS candidates)
    if(NOT py)
      continue()
    endif()
    get_filename_component(py "${py}" ABSOLUTE)  # without the ../ steps
    _sofie_python_provides("${py}" ok)
    if(ok)
      set(SOFIE_PYTHON_EXECUTABLE "${py}" CACHE FILEPATH "the Python whose sofie compiles models" FORCE)
      set(_SOFIE_PYTHON_CHECKED "${py}|${SOFIE_PACKAGE_DIR}" CACHE INTERNAL "")
      set(${out} "${py}" PARENT_SCOPE)
      return()
    endif()
    list(APPEND tried "${py}")
  endforeach()
  list(REMOVE_DUPLICATES tried)
  string(REPLACE ";" "\n    " tried "${tried}")
  message(FATAL_ERROR "sofie: no sofie compiler found: no Python imports the sofie package of "
          "${pkg} (`python -m sofie --cmakedir` must print ${pkg}/cmake). Tried:\n    ${tried}\n"
          "Install sofie into that Python, or pass -DSOFIE_PYTHON_EXECUTABLE=/path/to/python.")
endfunction()

# sofie_add_model(<target> MODEL <file> [NAME <name>] [BLAS <blas>] [OPTIONS <sofie-compile args>...])
function(sofie_add_model target)
  cmake_parse_arguments(ARG "" "MODEL;NAME;BLAS" "OPTIONS" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "sofie_add_model(${target}): unexpected arguments '${ARG_UNPARSED_ARGUMENTS}' "
            "(expected MODEL <file> [NAME <name>] [BLAS <blas>] [OPTIONS <sofie-compile args>...])")
  endif()
  if(NOT ARG_MODEL)
    message(FATAL_ERROR "sofie_add_model(${target}): MODEL <file> is required")
  endif()
  get_filename_component(model "${ARG_MODEL}" ABSOLUTE)
  get_source_file_property(generated "${model}" GENERATED)
  if(NOT EXISTS "${model}" AND NOT generated)
    message(FATAL_ERROR "sofie_add_model(${target}): MODEL file '${model}' does not exist")
  endif()
  if(NOT ARG_NAME)
    get_filename_component(ARG_NAME "${model}" NAME_WE)
  endif()
  _sofie_python(py)
  set(compile "${py}" -m sofie.tools.compile)
  if(NOT ARG_BLAS)  # chosen now, so that the build and the flags below agree
    execute_process(COMMAND "${py}" -m sofie --default-blas WORKING_DIRECTORY "${SOFIE_PACKAGE_DIR}/cmake"
                    OUTPUT_VARIABLE ARG_BLAS OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    message(STATUS "sofie: ${target}: BLAS ${ARG_BLAS} (the default of ${py})")
  endif()
  # the same flags `sofie-compile --print-flags` gives a hand-written build (no model needed)
  execute_process(COMMAND ${compile} --print-flags --blas "${ARG_BLAS}" WORKING_DIRECTORY "${SOFIE_PACKAGE_DIR}/cmake"
                  OUTPUT_VARIABLE flags ERROR_VARIABLE err
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "sofie_add_model(${target}): BLAS '${ARG_BLAS}': ${err}")
  endif()

  set(out "${CMAKE_CURRENT_BINARY_DIR}/sofie_${ARG_NAME}")
  file(MAKE_DIRECTORY "${out}")
  add_custom_command(
    OUTPUT "${out}/${ARG_NAME}.hxx" "${out}/${ARG_NAME}.dat"
    COMMAND ${compile} "${model}" -o "${out}" --name "${ARG_NAME}" --blas "${ARG_BLAS}" ${ARG_OPTIONS}
    DEPENDS "${model}" ${SOFIE_SOURCES}
    WORKING_DIRECTORY "${out}"
    COMMENT "sofie: compiling ${ARG_MODEL} to C++"
    VERBATIM)
  add_custom_target(${target}_generate DEPENDS "${out}/${ARG_NAME}.hxx")
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_generate)
  target_include_directories(${target} INTERFACE "${out}")
  target_compile_features(${target} INTERFACE cxx_std_17)
  string(TOUPPER "${ARG_BLAS}" blas_upper)
  target_compile_definitions(${target} INTERFACE SOFIE_BLAS_${blas_upper}
                             "SOFIE_${ARG_NAME}_WEIGHTS=\"${out}/${ARG_NAME}.dat\"")
  separate_arguments(flags UNIX_COMMAND "${flags}")
  foreach(f IN LISTS flags)
    if(f MATCHES "^-I(.*)")
      target_include_directories(${target} INTERFACE "${CMAKE_MATCH_1}")
    elseif(f MATCHES "^-l")
      target_link_libraries(${target} INTERFACE "${f}")  # after the objects, unlike link options
    elseif(f MATCHES "^-L(.*)")
      target_link_directories(${target} INTERFACE "${CMAKE_MATCH_1}")
    else()
      target_link_options(${target} INTERFACE "${f}")
    endif()
  endforeach()
  if(NOT CMAKE_VERSION VERSION_LESS 3.19)  # older CMake refuses custom properties on INTERFACE libraries
    set_target_properties(${target} PROPERTIES SOFIE_WEIGHTS "${out}/${ARG_NAME}.dat")
  endif()
endfunction()
