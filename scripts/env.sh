# Source this to use moonflow from the checkout: `. scripts/env.sh [build-dir]`.
_mf_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_mf_build="${1:-$_mf_root/build}"
case "$_mf_build" in /*) ;; *) _mf_build="$PWD/$_mf_build" ;; esac
export LUA_PATH="$_mf_root/lua/?.lua;$_mf_root/lua/?/init.lua;;"
export LUA_CPATH="$_mf_build/lua/?.so;;"
unset _mf_root _mf_build
