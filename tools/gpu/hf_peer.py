#!/usr/bin/env python3
"""The peer measurement for the GPU table: Hugging Face transformers' Qwen2AudioForConditionalGeneration
with the Qwen2-Audio-7B shapes (random bf16 weights, sdpa attention) on the same card, timed the way
speechllm-model-timing times our engine: encoder (HF always pads to a 30 s window), prefill of a 10 s
clip (encoder + 261-token prompt), and one decode step with the KV cache at batch 1, 16 and 64 over a
1024-token context, and at batch 1 and 16 over the reference figures' 293-token context. Prints one
JSON object, again after each section with every figure so far (the last whole line is the result).
Needs torch + transformers (GPU machines have them).
  python3 tools/gpu/hf_peer.py [--batches 1,16,64] [--context 1024] [--reference_context 293]
"""
import argparse
import json
import sys
import time

import torch


def timed_ms(fn, reps=5, warm=2):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end))
    return sorted(samples)[len(samples) // 2]


def build_model():
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration
    config = Qwen2AudioConfig(
        audio_config=dict(model_type="qwen2_audio_encoder", num_mel_bins=128, encoder_layers=32,
                          encoder_attention_heads=20, encoder_ffn_dim=5120, d_model=1280,
                          max_source_positions=1500),
        text_config=dict(model_type="qwen2", vocab_size=156032, hidden_size=4096, intermediate_size=11008,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                         rope_theta=10000.0, rms_norm_eps=1e-5, max_position_embeddings=8192,
                         tie_word_embeddings=False),
        audio_token_index=151646)
    config._attn_implementation = "sdpa"
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = Qwen2AudioForConditionalGeneration(config)
    torch.set_default_dtype(torch.float32)
    return model.to(torch.bfloat16).eval()


def submodule(model, name):
    return getattr(model, name) if hasattr(model, name) else getattr(model.model, name)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--context", type=int, default=1024)
    # The reference figures' decode context (PERFORMANCE.md, shared/tools/hf_reference.py: a 10 s
    # clip's 261-token prompt while generating 64 tokens, 293 on average).
    parser.add_argument("--reference_context", type=int, default=293)
    parser.add_argument("--reference_batches", default="1,16")
    args = parser.parse_args()
    import transformers
    out = {"peer": "transformers", "transformers": transformers.__version__, "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name(0)}
    started = time.time()
    model = build_model()
    out["init_s"] = round(time.time() - started, 1)
    tower = submodule(model, "audio_tower")
    with torch.no_grad():
        # 10 s of audio: 1000 valid mel frames in HF's 3000-frame window.
        features = torch.randn(1, 128, 3000, device="cuda", dtype=torch.bfloat16)
        mask = torch.zeros(1, 3000, dtype=torch.long, device="cuda")
        mask[:, :1000] = 1
        out["encoder_30s_window_ms"] = timed_ms(lambda: tower(features))
        audio_tokens = 250
        ids = torch.tensor([[151644, 872, 198, 151647] + [151646] * audio_tokens +
                            [151648, 198, 10, 11, 12, 151645, 198]], device="cuda")
        out["prefill_10s_prompt_tokens"] = ids.shape[1]
        out["prefill_10s_ms"] = timed_ms(lambda: model(input_ids=ids, input_features=features,
                                                       feature_attention_mask=mask,
                                                       attention_mask=torch.ones_like(ids)))
        text_model = submodule(model, "language_model")
        text_body = text_model.model if hasattr(text_model, "model") else text_model

        def decode_ms(batch, context):
            prompt = torch.randint(0, 150000, (batch, context), device="cuda")
            # The decoder body alone fills the cache: no [batch, context, vocab] logits on the way.
            cache = text_body(input_ids=prompt, use_cache=True).past_key_values
            token = torch.full((batch, 1), 1000, device="cuda")
            position = torch.full((batch, 1), context, device="cuda")

            def step():
                # One decode step on a copy-free cache view: crop keeps the context at `context` tokens.
                result = model(input_ids=token, past_key_values=cache, position_ids=position, use_cache=True)
                cache.crop(context)
                return result.logits[:, -1].float().argmax(-1)

            ms = timed_ms(step, reps=10, warm=3)
            del cache
            torch.cuda.empty_cache()
            return ms

        runs = [(int(b), args.context, "") for b in args.batches.split(",") if b]
        if args.reference_context > 0:  # speechllm-model-timing's decode_bN_refctx_* rows
            out["decode_reference_context_tokens"] = args.reference_context
            runs += [(int(b), args.reference_context, "_refctx")
                     for b in args.reference_batches.split(",") if b]
        print(json.dumps(out), flush=True)
        for batch, context, suffix in runs:
            ms = decode_ms(batch, context)
            out[f"decode_b{batch}{suffix}_ms_per_step"] = ms
            out[f"decode_b{batch}{suffix}_tokens_per_s"] = 1000.0 * batch / ms
            out["peak_memory_GiB"] = torch.cuda.max_memory_allocated() / 2**30
            # Every figure so far on one line after each run: a run cut off by its time box keeps
            # them (table.py reads the last whole line).
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
