#!/usr/bin/env python3
"""Prints the GPU comparison table of tools/gpu/run_bench.sh from the JSON files in its output folder."""
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            text = f.read().strip().splitlines()
        return json.loads(text[-1]) if text else {}
    except (OSError, ValueError):
        return {}


def fmt(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def main():
    out = sys.argv[1]
    ours = load(os.path.join(out, "ours_timing.json"))
    dense = load(os.path.join(out, "ours_timing_dense.json"))
    hf = load(os.path.join(out, "hf_peer.json"))
    env = open(os.path.join(out, "environment.txt")).read().strip() if os.path.exists(os.path.join(out, "environment.txt")) else ""
    print(f"GPU run: {env.splitlines()[1] if len(env.splitlines()) > 1 else env}")
    print()
    print("| measure | speechllm | Hugging Face | ratio (HF / ours) |")
    print("|---|---|---|---|")
    rows = [("decode ms/step, batch 1 (1k context)", "decode_b1_ms_per_step", "decode_b1_ms_per_step"),
            ("decode ms/step, batch 16", "decode_b16_ms_per_step", "decode_b16_ms_per_step"),
            ("decode ms/step, batch 64", "decode_b64_ms_per_step", "decode_b64_ms_per_step"),
            ("decode tokens/s, batch 16", "decode_b16_tokens_per_s", "decode_b16_tokens_per_s"),
            ("decode ms/step, batch 1, CUDA graph", "decode_b1_graph_ms_per_step", "decode_b1_ms_per_step"),
            ("decode ms/step, batch 16, CUDA graph", "decode_b16_graph_ms_per_step", "decode_b16_ms_per_step"),
            ("decode ms/step, batch 64, CUDA graph", "decode_b64_graph_ms_per_step", "decode_b64_ms_per_step"),
            ("decode tokens/s, batch 16, CUDA graph", "decode_b16_graph_tokens_per_s", "decode_b16_tokens_per_s"),
            ("prefill of a 10 s clip, ms (encoder + prompt)", "prefill_10s_ms", "prefill_10s_ms"),
            ("encoder, 10 s of audio, ms", "encoder_10s_ms", "encoder_30s_window_ms"),
            ("encoder, 30 s of audio, ms", "encoder_30s_ms", "encoder_30s_window_ms")]
    for name, ours_key, hf_key in rows:
        a, b = ours.get(ours_key), hf.get(hf_key)
        ratio = (b / a) if a and b and "tokens" not in ours_key else ((a / b) if a and b else None)
        print(f"| {name} | {fmt(a)} | {fmt(b)} | {fmt(ratio)}x |")
    for batch in (1, 16, 64):
        a, b = dense.get(f"decode_b{batch}_ms_per_step"), hf.get(f"decode_b{batch}_ms_per_step")
        if a:
            print(f"| decode ms/step, batch {batch}, libtorch layers only (no kernels, no graph) | {fmt(a)} | "
                  f"{fmt(b)} | {fmt(b / a if b else None)}x |")
    # Every stream count the run measured (STREAMS="150 200" in run_bench.sh), fewest first.
    runs = []
    for name in os.listdir(out):
        if name.startswith("ours_streams_") and name.endswith(".json"):
            run = load(os.path.join(out, name))
            if run:
                runs.append(run)
    for run in sorted(runs, key=lambda r: r.get("streams", 0)):
        p95 = run.get("partial_latency_ms_p95")
        verdict = "" if p95 is None else (" (meets <= 300 ms)" if p95 <= 300 else " (misses 300 ms)")
        print(f"| concurrent real-time streams (1 s chunks) | {run.get('streams')} streams: partial p95 "
              f"{fmt(p95, 0)} ms{verdict}, RTF max {fmt(run.get('real_time_factor_max'), 3)} | n/a | |")
    ours_peak = None
    try:
        with open(os.path.join(out, "gpu_memory_mib.log")) as f:
            ours_peak = max(int(line) for line in f if line.strip().isdigit()) / 1024
    except (OSError, ValueError):
        pass
    print(f"| peak GPU memory, GiB (ours: whole card while our stages ran) | {fmt(ours_peak)} | "
          f"{fmt(hf.get('peak_memory_GiB'))} | |")
    bound = ours.get("decode_bound_ms")
    if bound:
        best = ours.get("decode_b1_graph_ms_per_step") or ours.get("decode_b1_ms_per_step")
        print(f"| decode batch 1 bound: {ours.get('decode_weight_bytes', 0) / 1e9:.2f} GB of weights / "
              f"{fmt(ours.get('copy_bandwidth_GBps'), 0)} GB/s copy bandwidth, ms | {fmt(bound)} | | "
              f"ours {fmt(best / bound if best else None)}x the bound (target <= 1.3x) |")
    print()
    print("HF encoder always runs the padded 30 s window (its cost does not depend on the clip length).")


if __name__ == "__main__":
    main()
