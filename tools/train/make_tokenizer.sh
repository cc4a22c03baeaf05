#!/bin/sh
# Makes the small model's tokenizer: a byte-level BPE of VOCAB_SIZE entries (default 1,024): 256
# bytes + merges learned by speechllm-bpe-train on the training transcripts and the chat prompt's
# fixed text + six special tokens last, in Qwen2-Audio's order (<|endoftext|> VOCAB_SIZE - 6 ...
# <|audio_eos|> VOCAB_SIZE - 1).
# Usage: tools/train/make_tokenizer.sh DATA_DIR OUT_DIR [BUILD_DIR] [VOCAB_SIZE]   (from the repo
# root)
set -eu
data=$1
out=$2
build=${3:-build}
vocab=${4:-1024}
mkdir -p "$out"
corpus=$(mktemp)
trap 'rm -f "$corpus"' EXIT
cut -f4 "$data/train.tsv" > "$corpus"
# The prompt text of every training example (the chat template around the audio), so that it
# costs few tokens.
i=0
while [ $i -lt 500 ]; do
  printf 'system\nYou are a helpful assistant.\nuser\nAudio 1: \nTranscribe the speech.\nassistant\n' >> "$corpus"
  i=$((i + 1))
done
s=$((vocab - 6))
"$build/tools/tokenizer/speechllm-bpe-train" --corpus "$corpus" --vocab-size "$vocab" \
  --special "<|endoftext|>=$s,<|im_start|>=$((s + 1)),<|im_end|>=$((s + 2)),<|AUDIO|>=$((s + 3)),<|audio_bos|>=$((s + 4)),<|audio_eos|>=$((s + 5))" \
  --out "$out"
