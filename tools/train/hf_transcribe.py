#!/usr/bin/env python3
"""Greedy transcripts of clips by Hugging Face transformers' Qwen2AudioForConditionalGeneration
loading a checkpoint directory (for the trained model: models/speechllm-asr-small), with the chat
prompt the server and speechllm-transcribe use. Prints id<TAB>text lines, which compare directly
with `speechllm-transcribe --manifest` output (diff, or speechllm-wer). Needs torch, transformers
and numpy (GPU machines have them; this CPU machine has no PyPI).
  python3 tools/train/hf_transcribe.py --model models/speechllm-asr-small \
      --wav_dir tests/data/asr-small --manifest tests/data/asr-small/clips.tsv
"""
import argparse
import os
import sys
import wave

import numpy as np
import torch


def read_wav(path):
    with wave.open(path, "rb") as f:
        assert f.getsampwidth() == 2 and f.getframerate() == 16000, path
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).astype(np.float32)
        return (pcm.reshape(-1, f.getnchannels()).mean(axis=1) / 32768.0)


def main():
    from transformers import (PreTrainedTokenizerFast, Qwen2AudioForConditionalGeneration,
                              WhisperFeatureExtractor)
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--manifest", required=True, help="TSV, first column = clip id")
    parser.add_argument("--wav_dir", required=True)
    parser.add_argument("--instruction", default="Transcribe the speech.")
    parser.add_argument("--max_new_tokens", type=int, default=64)
    args = parser.parse_args()
    model = Qwen2AudioForConditionalGeneration.from_pretrained(args.model,
                                                               torch_dtype=torch.float32).eval()
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(args.model, "tokenizer.json"))
    features = WhisperFeatureExtractor.from_pretrained(args.model)
    # Qwen2AudioProcessor's default chat template with one audio item and the instruction.
    prompt = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
              "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n" + args.instruction +
              "<|im_end|>\n<|im_start|>assistant\n")
    audio_id = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    stops = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    with open(args.manifest, encoding="utf-8") as manifest:
        ids = [line.split("\t")[0] for line in manifest if line.strip()]
    for clip in ids:
        samples = read_wav(os.path.join(args.wav_dir, clip + ".wav"))
        inputs = features(samples, sampling_rate=16000, return_attention_mask=True,
                          padding="max_length", return_tensors="pt")
        valid_frames = int(inputs["attention_mask"].sum())
        audio_tokens = ((valid_frames - 1) // 2 + 1 - 2) // 2 + 1
        prompt_ids = []
        for token in tokenizer(prompt, add_special_tokens=False)["input_ids"]:
            prompt_ids += [audio_id] * audio_tokens if token == audio_id else [token]
        input_ids = torch.tensor([prompt_ids])
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                 input_features=inputs["input_features"],
                                 feature_attention_mask=inputs["attention_mask"],
                                 max_new_tokens=args.max_new_tokens, do_sample=False,
                                 eos_token_id=stops, pad_token_id=stops[-1])
        text = tokenizer.decode(out[0, input_ids.shape[1]:], skip_special_tokens=True)
        print(f"{clip}\t{text}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
