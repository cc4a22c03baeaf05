#!/bin/sh
# Makes the small model's tokenizer: a 1,024-entry byte-level BPE (256 bytes + merges learned by
# speechllm-bpe-train on the training transcripts and the chat prompt's fixed text + six special
# tokens in Qwen2-Audio's order, <|endoftext|> 1018 ... <|audio_eos|> 1023).
# Usage: tools/train/make_tokenizer.sh DATA_DIR OUT_DIR [BUILD_DIR]   (from the repository root)
set -eu
data=$1
out=$2
build=${3:-build}
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
"$build/tools/tokenizer/speechllm-bpe-train" --corpus "$corpus" --vocab-size 1024 \
  --special "<|endoftext|>=1018,<|im_start|>=1019,<|im_end|>=1020,<|AUDIO|>=1021,<|audio_bos|>=1022,<|audio_eos|>=1023" \
  --out "$out"
