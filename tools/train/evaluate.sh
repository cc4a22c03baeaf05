#!/usr/bin/env bash
# Word error rates of a trained checkpoint (issue 9), written to OUT_DIR/summary.txt:
#   offline          speechllm-transcribe over the held-out clips (Hugging Face's computation)
#   streaming exact  speechllm-server + speechllm-client, final_mode exact (must equal offline)
#   streaming fast   the same with final_mode fast (block-causal encoder, no re-encode)
#   real speech      the human recordings of Debian's pocketsphinx-testdata (never trained on)
# Usage: tools/train/evaluate.sh MODEL_DIR DATA_DIR [BUILD_DIR] [OUT_DIR]   (from the repo root)
# DATA_DIR holds test.tsv and test/ from make_data.py.
set -euo pipefail
model=$1
data=$2
build=${3:-build}
out=${4:-$(mktemp -d)}
mkdir -p "$out"
wer="$build/tools/wer/speechllm-wer"
summary="$out/summary.txt"
: > "$summary"

"$build/tools/transcribe/speechllm-transcribe" --model "$model" --manifest "$data/test.tsv" \
  --wav_dir "$data/test" --out "$out/offline.tsv" --threads 2
echo "offline: $("$wer" --ref "$data/test.tsv" --hyp "$out/offline.tsv")" | tee -a "$summary"

"$build/server/speechllm-server" --model "$model" --listen 127.0.0.1:0 --port_file "$out/port" \
  --threads 2 2>"$out/server.log" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do [ -s "$out/port" ] && break; sleep 0.1; done
[ -s "$out/port" ] || { cat "$out/server.log" >&2; echo "evaluate.sh: no server" >&2; exit 1; }
port=$(cat "$out/port")
for mode in exact fast; do
  : > "$out/stream_$mode.tsv"
  while IFS=$'\t' read -r id _; do
    text=$("$build/client/speechllm-client" --server "127.0.0.1:$port" --wav "$data/test/$id.wav" \
      --fast --chunk_ms 100 --final_mode "$mode" --endpointing manual --no_interim 2>/dev/null |
      sed -n 's/^final: //p' | paste -sd' ')
    printf '%s\t%s\n' "$id" "$text" >> "$out/stream_$mode.tsv"
  done < "$data/test.tsv"
  echo "streaming $mode: $("$wer" --ref "$data/test.tsv" --hyp "$out/stream_$mode.tsv")" |
    tee -a "$summary"
done
same=$(paste "$out/offline.tsv" "$out/stream_exact.tsv" | awk -F'\t' '$2 == $4' | wc -l)
echo "streaming exact finals identical to offline: $same of $(wc -l < "$out/offline.tsv")" |
  tee -a "$summary"

# Real human speech: Debian's pocketsphinx-testdata (cards and a LibriVox reading), with the
# transcripts it ships.
real=/usr/share/pocketsphinx/test/data
if [ ! -d "$real" ]; then
  (cd "$out" && apt-get download pocketsphinx-testdata >/dev/null 2>&1 &&
    dpkg -x pocketsphinx-testdata_*.deb "$out/pocketsphinx") || true
  real="$out/pocketsphinx/usr/share/pocketsphinx/test/data"
fi
if [ -d "$real" ]; then
  mkdir -p "$out/real"
  : > "$out/real.tsv"
  for set in cards/cards.transcription librivox/transcription; do
    dir=$(dirname "$set")
    sed -E 's/^<s> (.*) <\/s> \((.*)\)$/\2\t\1/; s/ +\t/\t/; s/[[:space:]]+$//' "$real/$set" |
      while IFS=$'\t' read -r id text; do
        cp "$real/$dir/$id.wav" "$out/real/$id.wav"
        printf '%s\t%s\n' "$id" "$text" >> "$out/real.tsv"
      done
  done
  "$build/tools/transcribe/speechllm-transcribe" --model "$model" --manifest "$out/real.tsv" \
    --wav_dir "$out/real" --out "$out/real_offline.tsv" --threads 2
  echo "real speech (pocketsphinx-testdata, $(wc -l < "$out/real.tsv") recordings): $("$wer" \
    --ref "$out/real.tsv" --hyp "$out/real_offline.tsv")" | tee -a "$summary"
else
  echo "real speech: pocketsphinx-testdata is not available" | tee -a "$summary"
fi
echo "evaluate.sh: results in $out"
