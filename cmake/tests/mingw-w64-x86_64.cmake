# Toolchain file: cross-compile to Windows x86-64 with Debian's mingw-w64
# (POSIX-thread variants). Used by cmake/tests/windows_gnu.sh; the root
# CMakeLists.txt picks the Rust target x86_64-pc-windows-gnu from it.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Packages may come from CMAKE_PREFIX_PATH (the installed libstorectx).
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
