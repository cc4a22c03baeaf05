#!/usr/bin/env bash
# The training data pipeline end to end on a few clips (label integration): make_data.py with the
# real espeak-ng and sox, make_tokenizer.sh with speechllm-bpe-train, then one speechllm-train step
# that writes a checkpoint speechllm-transcribe can run. Checks the index/PCM consistency, that no
# test sentence is a training sentence, and that test clips are valid WAVs.
# Usage: make_data_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "make_data_test: $*" >&2; exit 1; }

python3 "$src/tools/train/make_data.py" --out "$work/data" --train 40 --test 6 --jobs 2 --seed 4
[ "$(wc -l < "$work/data/train.tsv")" -eq 40 ] || fail "train.tsv should have 40 lines"
[ "$(wc -l < "$work/data/test.tsv")" -eq 6 ] || fail "test.tsv should have 6 lines"
# Offsets are consecutive and the PCM file holds exactly the indexed samples.
awk -F'\t' 'BEGIN { next_offset = 0 }
  { if ($1 != next_offset || $2 <= 0) { print "bad line " NR > "/dev/stderr"; exit 1 }
    next_offset = $1 + $2 }
  END { print next_offset * 2 }' "$work/data/train.tsv" > "$work/bytes"
[ "$(cat "$work/bytes")" -eq "$(stat -c %s "$work/data/train.pcm")" ] ||
  fail "train.pcm size does not match train.tsv"
cut -f3 "$work/data/test.tsv" | while read -r sentence; do
  if cut -f4 "$work/data/train.tsv" | grep -qxF "$sentence"; then
    fail "test sentence \"$sentence\" is also a training sentence"
  fi
done
for wav in "$work"/data/test/*.wav; do
  [ "$(soxi -r "$wav")" = 16000 ] || fail "$wav is not 16 kHz"
  [ "$(soxi -c "$wav")" = 1 ] || fail "$wav is not mono"
done
# Test voices use variants that training never uses.
if cut -f3 "$work/data/train.tsv" | grep -qE '\+(f4|m6|klatt4|Annie|edward2|iven3|steph3|john) '; then
  fail "a held-out voice variant appears in training"
fi

"$src/tools/train/make_tokenizer.sh" "$work/data" "$work/tokenizer" "$build" 400 > /dev/null
"$build/tools/train/speechllm-train" --data "$work/data" --tokenizer "$work/tokenizer/tokenizer.json" \
  --out "$work/model" --steps 2 --batch 4 --save_every 2 --val_clips 4 --log_every 1 \
  --d_model 64 --encoder_layers 1 --encoder_heads 2 --encoder_ffn 128 --hidden_size 64 \
  --decoder_layers 1 --decoder_heads 2 --decoder_kv_heads 1 --intermediate_size 128
first=$(head -1 "$work/data/test.tsv" | cut -f1)
"$build/tools/transcribe/speechllm-transcribe" --model "$work/model" \
  --wav "$work/data/test/$first.wav" --max_new_tokens 4 > "$work/out.txt"
grep -q '^text: ' "$work/out.txt" || fail "speechllm-transcribe printed no text line"
echo "make_data_test: OK"
