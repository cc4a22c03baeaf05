#!/bin/sh
# Regenerates models/qwen2-audio-tiny/tokenizer.json: a 512-entry byte-level BPE (256 bytes + merges
# learned on tools/tokenizer/tiny_corpus.txt + six special tokens) for the tiny test checkpoint,
# whose audio ids are 500/501/502 (config.json audio_token_index = 500).
# Usage: tools/tokenizer/make_tiny_tokenizer.sh [BUILD_DIR]   (run from the repository root;
# BUILD_DIR defaults to build; the trainer target is built there first).
# tests/unit/engine/model/tokenizer/tiny_tokenizer_test.cc retrains with these exact settings and
# fails if the committed file differs.
set -eu
BUILD_DIR=${1:-build}
cmake --build "$BUILD_DIR" --target speechllm-bpe-train
"$BUILD_DIR/tools/tokenizer/speechllm-bpe-train" \
  --corpus tools/tokenizer/tiny_corpus.txt \
  --vocab-size 512 \
  --special "<|AUDIO|>=500,<|audio_bos|>=501,<|audio_eos|>=502,<|endoftext|>=503,<|im_start|>=504,<|im_end|>=505" \
  --out models/qwen2-audio-tiny
