rockspec_format = "3.0"
package = "moonflow"
version = "scm-1"
source = {
  url = "git+file:///dev/null", -- built with `luarocks make` from a checkout
}
description = {
  summary = "TensorFlow-1.x-style graphs, sessions and variables: a C core scripted from Lua 5.4",
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
    MF_BUILD_TESTS = "OFF",
    MF_INSTALL_C_LIBRARY = "OFF",
  },
}
