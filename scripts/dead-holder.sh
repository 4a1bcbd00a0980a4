#!/usr/bin/env bash
# The issue-27 fault, measured: a client holding `tern serve`'s board is killed (kill -9)
# one second into a 60 s wait_irq, and another client's `tern run --board-wait 20` waits
# for the board. Prints when the daemon saw the holder go and how long the second run
# took after the kill (BENCHMARKS.md, "A holder that dies mid-wait").
#
#   scripts/dead-holder.sh [TERN]   TERN: the tern binary (default target/release/tern)
set -euo pipefail
cd "$(dirname "$0")/.."
tern=${1:-target/release/tern}
dir=$(mktemp -d)
sock=$dir/board.sock
trap 'kill "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$tern" serve --config examples/default.toml --listen "unix:$sock" >"$dir/serve.log" 2>&1 &
server=$!
for _ in $(seq 600); do [ -S "$sock" ] && break; sleep 0.1; done
echo "socket mode: $(stat -c %a "$sock")"
# A client from docs/wire.md alone: info, then wait_irq for 60 s with mask 0.
python3 - "$sock" <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
req = lambda op, tag, addr=0, count=0: b"TERN" + struct.pack("<HBBIIQII", 1, op, 0, tag, 0, addr, count, 0)
s.sendall(req(1, 1)); h = s.recv(32); s.recv(struct.unpack("<I", h[28:32])[0])
s.sendall(req(6, 2, 60000, 0)); time.sleep(120)
PY
client=$!
sleep 1
echo "killed the holder at $(date -u +%H:%M:%S.%N) UTC"
kill -9 "$client"
wait "$client" 2>/dev/null || true
t0=$(date +%s.%N)
"$tern" run --board-uri "unix:$sock" --config examples/default.toml --board-wait 20 2>/dev/null | tail -n 1
t1=$(date +%s.%N)
echo "tern run finished $(echo "$t1 - $t0" | bc) s after the kill"
echo "the daemon's log (UTC):"
grep -E "disconnected|connected client=2" "$dir/serve.log" | head -n 2
