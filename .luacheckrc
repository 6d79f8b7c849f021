-- luacheck (scripts/test.sh runs it over lua/ and scripts/).
std = "lua54"
-- Line length is left to review; nothing formats the Lua code.
max_line_length = false
-- The specs, when checked (`luacheck tests/spec`), run under busted.
files["tests/spec"] = { std = "+busted" }
