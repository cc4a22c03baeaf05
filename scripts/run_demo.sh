#!/usr/bin/env bash
# The main job on the bundled default model (models/speechllm-asr-small, trained by the project on
# synthetic espeak-ng speech; README "What is here"): starts speechllm-server on a free local port,
# streams a held-out clip through speechllm-client in real time (partials in place, then the final
# and its token ids), and stops the server. Usage: scripts/run_demo.sh [WAV] [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
wav=${1:-$root/tests/data/asr-small/test_0042.wav}
build_dir=${2:-$root/build}
model=$root/models/speechllm-asr-small
work=$(mktemp -d)
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# The server's default prompt (the chat template with "Transcribe the speech.") is the one the
# model was trained with.
"$build_dir/server/speechllm-server" --model "$model" --listen 127.0.0.1:0 --port_file "$work/port" \
  2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 300); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { cat "$work/server.log" >&2; echo "run_demo.sh: the server did not start" >&2; exit 1; }
port=$(cat "$work/port")
echo "run_demo.sh: speechllm-server on 127.0.0.1:$port; streaming $(basename "$wav")"
"$build_dir/client/speechllm-client" --server "127.0.0.1:$port" --wav "$wav" --chunk_ms 100 \
  --endpointing manual --commit_policy none --token_ids
kill -TERM "$server_pid"
wait "$server_pid"
