#!/usr/bin/env bash
# Outside CI: Netron (PyPI's `netron`) opens what moonflow writes — a
# GraphDef from tf.train.write_graph and a saved model's saved_model.pb —
# rendered by headless Chromium. Checks that the rendered page shows the
# graph's op types and leaves a screenshot of each in $OUT (default
# /tmp/netron_check).
#   python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install netron
#   scripts/oracle/netron_check.sh /tmp/tfvenv/bin/python
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${1:-python3}"
out="${OUT:-/tmp/netron_check}"
rm -rf "$out" && mkdir -p "$out/cookie" "$out/profile"
cat > "$out/make.lua" <<'LUA'
local tf = require("moonflow")
local x = tf.placeholder(tf.float32, { -1, 4 }, "x")
local y
tf.name_scope("dense", function()
  local w = tf.Variable(tf.random_normal({ 4, 3 }), { name = "w" })
  local b = tf.Variable(tf.zeros({ 3 }), { name = "b" })
  y = tf.nn.relu(tf.matmul(x, w) + b, { name = "y" })
end)
tf.train.write_graph(tf.get_default_graph(), arg[1], "graph.pb", false)
local sess = tf.Session()
sess:run(tf.global_variables_initializer())
tf.saved_model.simple_save(sess, arg[1] .. "/model", { x = x }, { y = y })
LUA
( . scripts/env.sh build; lua5.4 "$out/make.lua" "$out" )
# Netron asks for cookie consent first: a cookie set on the same host (another port) answers it.
echo '<script>document.cookie = "consent=" + Date.now() + "; max-age=86400; path=/"</script>' > "$out/cookie/index.html"
(cd "$out/cookie" && exec python3 -m http.server 8092 --bind 127.0.0.1 >/dev/null 2>&1) & cookie_pid=$!
trap 'kill $cookie_pid $netron_pid 2>/dev/null || true' EXIT
netron_pid=
browser() { timeout 120 chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$out/profile" \
              --window-size=1200,1000 --virtual-time-budget=30000 "$@" 2>/dev/null; }
sleep 1
browser --dump-dom http://127.0.0.1:8092/ >/dev/null
for file in graph.pb model/saved_model.pb; do
  "$py" -c 'import netron, sys, time; netron.start(sys.argv[1], address=("127.0.0.1", 8091), browse=False); time.sleep(300)' \
    "$out/$file" >/dev/null 2>&1 & netron_pid=$!
  sleep 4
  labels=$(browser --dump-dom http://127.0.0.1:8091/ | grep -o '<text[^>]*>[^<]*</text>' | sed 's/<[^>]*>//g' | sort -u | tr '\n' ' ')
  browser --screenshot="$out/${file//\//_}.png" http://127.0.0.1:8091/ >/dev/null
  kill $netron_pid; wait $netron_pid 2>/dev/null || true
  for op in Placeholder MatMul Add Relu VariableV2; do
    [ "$op" = Placeholder ] && op=x # Netron labels a graph input by its name
    case " $labels " in *" $op "*) ;; *) echo "Netron's page for $file lacks '$op' (it shows: $labels)" >&2; exit 1 ;; esac
  done
  echo "netron renders $file: $labels(screenshot $out/${file//\//_}.png)"
done
