# Included by CMake right after llama.cpp's own project() call (scripts/setup.sh passes it as
# CMAKE_PROJECT_llama.cpp_INCLUDE). llama-cpp-python forces LLAMA_BUILD_COMMON ON, and llama.cpp then both builds and
# installs libllama-common (arg parsing, chat templates, json schema, sampling helpers: 57 of the 127 compile
# commands), which the Python package never loads. Turning it off here, before llama.cpp reads the option, removes
# the library and its install rule together; building only the `llama` target instead fails at install time, since
# the install rule still names the library.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library (off: the Python package does not load it)" FORCE)
