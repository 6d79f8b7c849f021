#!/usr/bin/env bash
# Emulates N hosts on this machine to check the scaling model (docs/MPI.md):
# one network namespace per "host" (own hostname), veth pairs on a bridge,
# each host's egress limited by tc tbf (RATE, default 1gbit); mpirun reaches
# the hosts through an rsh agent that enters the namespace instead of ssh.
# Prints JSON lines: ping-pong (the link's latency and bandwidth), allreduce
# of config a's and b's gradient bytes (C MPI_Allreduce and moonflow), and
# char-RNN (config a, --distributed) step time on the emulated hosts and on
# one host. Needs root, iproute2, tc; removes what it made on exit.
#   scripts/bench/mpi_netns.sh [N=2] [RATE=1gbit]
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-2}" rate="${2:-1gbit}"
agent=$(mktemp) exe=$(mktemp)
cleanup() {
  for i in $(seq 1 "$n"); do ip netns del "mf$i" 2>/dev/null || true; ip link del "mfv$i" 2>/dev/null || true; done
  ip link del mfbr 2>/dev/null || true
  rm -f "$agent" "$exe"
}
trap cleanup EXIT
cat >"$agent" <<'AGENT'
#!/bin/sh
host="$1"; shift
while [ "${1#-}" != "$1" ]; do shift; done
ns="mf${host##*.}"
exec ip netns exec "$ns" unshare --uts sh -c "hostname $ns; $*"
AGENT
chmod +x "$agent"
ip link add mfbr type bridge
ip addr add 10.77.0.254/24 dev mfbr
ip link set mfbr up
hosts=()
for i in $(seq 1 "$n"); do
  ip netns add "mf$i"
  ip link add "mfv$i" type veth peer name eth0 netns "mf$i"
  ip link set "mfv$i" master mfbr
  ip link set "mfv$i" up
  ip netns exec "mf$i" ip addr add "10.77.0.$i/24" dev eth0
  ip netns exec "mf$i" ip link set eth0 up
  ip netns exec "mf$i" ip link set lo up
  ip netns exec "mf$i" tc qdisc add dev eth0 root tbf rate "$rate" burst 64kb latency 2ms
  hosts+=("10.77.0.$i")
done
mpicc -O2 scripts/bench/c/mpi_allreduce.c -o "$exe"
# One core per rank: the emulated hosts share this machine's cores.
export MOONFLOW_MPI_THREADS=1
run=(mpirun --allow-run-as-root -np "$n" -H "$(IFS=,; echo "${hosts[*]}")" --bind-to none
     --mca plm_rsh_agent "$agent" --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24
     --mca oob_tcp_if_include 10.77.0.0/24)
ga=971780 gb=13814532 # float32 gradient bytes of configs a and b (scripts/bench/mpi_model.lua)
"${run[@]}" "$exe" pingpong 10 4 "$ga" "$gb" | sed "s/}$/,\"rate\":\"$rate\",\"hosts\":$n}/"
"${run[@]}" "$exe" 20 4 "$ga" "$gb" | grep '"c_mpi"' | sed "s/}$/,\"rate\":\"$rate\",\"hosts\":$n}/"
"${run[@]}" lua5.4 "$PWD/scripts/bench/mpi.lua" --worker --iters 20 --sizes "4,$ga,$gb" |
  sed "s/}$/,\"rate\":\"$rate\",\"hosts\":$n}/"
step() { # tokens/s of char_rnn.lua's default model, 20 steps -> ms per step
  local out
  out=$("$@" lua5.4 "$PWD/scripts/char_rnn.lua" --max_steps 20 --eval_val_every 0 --checkpoint_every 0 --quiet \
          --checkpoint_dir "$(mktemp -d)" --distributed 2>&1 | tail -1)
  echo "$out" | sed -E 's/.* ([0-9.]+)k tokens\/s.*/\1/' | awk '{printf "%.1f", 2500 / ($1 * 1000) * 1000}'
}
echo "{\"bench\":\"char_rnn_step\",\"config\":\"a\",\"ranks\":$n,\"emulated_hosts\":$n,\"rate\":\"$rate\",\"step_ms\":$(step "${run[@]}")}"
echo "{\"bench\":\"char_rnn_step\",\"config\":\"a\",\"ranks\":$n,\"emulated_hosts\":1,\"step_ms\":$(step mpirun --allow-run-as-root --oversubscribe -np "$n")}"
