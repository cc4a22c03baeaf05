#!/usr/bin/env python3
"""Prints the GPU comparison table of tools/gpu/run_bench.sh from the JSON files in its output folder."""
import csv
import json
import os
import sys


def load(path):
    """The last line of `path` that is a JSON object: a benchmark prints its figures so far after
    every section, so a run cut short by its timeout leaves a last line that may be cut too."""
    try:
        with open(path) as f:
            lines = f.read().strip().splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def fmt(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def times(ratio):
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def card_name(env):
    """The card's name from nvidia-smi's CSV (header line, then 'name, memory, driver')."""
    lines = env.splitlines()
    return lines[1].split(",")[0].strip() if len(lines) > 1 else ""


def best_graph_or_eager(ours, batch, key):
    """The graph replay's figure where the run has one, else the eager step's."""
    return ours.get(f"decode_b{batch}_graph_{key}") or ours.get(f"decode_b{batch}_{key}")


def steady_or_all(run, key):
    """A stream run's figure over its steady window (all streams active) where it has one."""
    steady = run.get(f"{key}_steady")
    return (steady, " (steady)") if steady is not None else (run.get(key), "")


def meets_partial_target(run):
    """Whether a stream run's (steady) partial p95 is at most 300 ms. A run that counted no
    partials has no p95 (the bench writes 0 for an empty set), so it meets nothing."""
    p95, steady = steady_or_all(run, "partial_latency_ms_p95")
    count = run.get("partials_steady" if steady else "partials")
    return p95 is not None and count != 0 and p95 <= 300


def capacity(runs):
    """The most streams (> 1) among the runs whose (steady) partial p95 met 300 ms: 0 when none
    did, None when no run had more than one stream."""
    many = [run for run in runs if run.get("streams", 0) > 1]
    met = [run["streams"] for run in many if meets_partial_target(run)]
    return max(met) if met else (0 if many else None)


def converged_final_ms(ours):
    """An exact final whose draft (the last partial) the model accepts: the segment's re-encode, one
    verify prefill of audio + suffix + draft, and the step that ends the text. Random weights never
    converge (new audio changes their greedy tokens and they never stop), so the measured 1-stream
    final decodes all 24 tokens; this is the same final from measured parts, for a real model."""
    parts = [ours.get("encoder_10s_ms"), ours.get("prefill_10s_decoder_ms"),
             best_graph_or_eager(ours, 1, "ms_per_step")]
    return sum(parts) if all(p is not None for p in parts) else None


def print_targets(card, ours, runs, best_b1, bound):
    """One line per target of the issue and PERFORMANCE.md, with the figure it is judged on."""
    b1_limit = 4.5 if "H200" in card else (6.0 if "H100" in card else None)
    by_streams = {run.get("streams"): run for run in runs}
    many = by_streams.get(150) or (runs[-1] if runs else {})
    one = by_streams.get(1, {})
    many_p95, many_window = steady_or_all(many, "partial_latency_ms_p95")
    many_chunk_p95, chunk_window = steady_or_all(many, "chunk_latency_ms_p95")
    if many.get("chunks_steady" if chunk_window else "chunks") == 0:
        many_chunk_p95 = None  # no chunk timed: the bench writes 0 for an empty set
    ref_context = ours.get("decode_reference_context_tokens", "n/a")
    checks = [
        (f"decode batch 1 <= {fmt(b1_limit, 1)} ms ({card or 'card unknown'}; 1k context)", best_b1, b1_limit, "max"),
        ("decode batch 1 <= 1.3x weight bytes / copy bandwidth",
         best_b1 / bound if best_b1 and bound else None, 1.3, "max"),
        ("decode batch 16 >= 3,000 tokens/s (1k contexts)", best_graph_or_eager(ours, 16, "tokens_per_s"), 3000,
         "min"),
        (f"decode batch 1 <= {fmt(b1_limit, 1)} ms, at the reference figures' context ({ref_context} tokens)",
         best_graph_or_eager(ours, "1_refctx", "ms_per_step"), b1_limit, "max"),
        (f"decode batch 16 >= 3,000 tokens/s, at the reference figures' context ({ref_context} tokens)",
         best_graph_or_eager(ours, "16_refctx", "tokens_per_s"), 3000, "min"),
        ("decode batch 64 >= 4,500 tokens/s (1k contexts)", best_graph_or_eager(ours, 64, "tokens_per_s"),
         4500, "min"),
        ("prefill of a 10 s clip <= 12 ms", ours.get("prefill_10s_ms"), 12, "max"),
        (f"{many.get('streams', 150)} real-time streams: partial p95 <= 300 ms{many_window}",
         many_p95, 300 if many.get("streams", 0) >= 150 else None, "max"),
        (f"{many.get('streams', 150)} real-time streams: every chunk reflected by an update within 300 ms, "
         f"p95{chunk_window} (stricter: an update that takes several chunks times each from its own arrival)",
         many_chunk_p95, 300 if many.get("streams", 0) >= 150 else None, "max"),
        ("largest stream count measured at partial p95 <= 300 ms: >= 150", capacity(runs), 150, "min"),
        ("1 stream: first partial p95 <= 50 ms", one.get("first_partial_latency_ms_p95"), 50, "max"),
        ("1 stream: final p95 <= 100 ms after the end of the audio (random weights: all 24 tokens decoded)",
         one.get("final_latency_ms_p95"), 100, "max"),
        ("1 stream: final <= 100 ms once the partial has converged, estimated from its parts (re-encode "
         "of 10 s, 261-token verify prefill, one decode step)", converged_final_ms(ours), 100, "max"),
    ]
    print("| target | measured | verdict |")
    print("|---|---|---|")
    for name, value, limit, kind in checks:
        if value is None or limit is None:
            verdict = "not measured" if value is None else "no target for this card or stream count"
        else:
            verdict = "met" if (value <= limit if kind == "max" else value >= limit) else "missed"
        print(f"| {name} | {fmt(value)} | {verdict} |")


def audio_step_split(path):
    """'N steps, E / D of T s' over the step log's steps that carried audio (encoder items > 0)."""
    try:
        with open(path) as f:
            rows = [r for r in csv.DictReader(f) if float(r.get("encoder_items") or 0) > 0]
        if not rows or "encoder_ms" not in rows[0]:
            return None
        total = lambda key: sum(float(r[key]) for r in rows) / 1000
        return (f"{len(rows)} steps: {total('encoder_ms'):.2f} / {total('decoder_ms'):.2f} of "
                f"{total('duration_ms'):.2f}")
    except (OSError, ValueError, TypeError):  # a missing or cut-off log: no row
        return None


def reruns_note(run):
    """Steps of a stream run that failed and ran again in halves (since 2026-11-30), or nothing.
    A run in which a stream failed writes no JSON; these are faults the reruns recovered from."""
    if not run.get("step_reruns"):
        return ""
    return (f"; STEPS FAILED AND RAN AGAIN: {run['step_reruns']} more runner calls "
            f"(device errors or allocation failures the reruns recovered from)")


def slow_steps(path):
    """The step log's slow steps (over 500 ms and 5x the median): how many, and for the slowest its
    host part (duration less the wait for the device) and its device wait, or None."""
    try:
        with open(path) as f:
            # One runner call each: a step run again in parts has no single host part and wait.
            rows = [r for r in csv.DictReader(f)
                    if r.get("ok") == "1" and (r.get("executions") or "1") == "1"]
        if not rows or "wait_ms" not in rows[0]:
            return None
        durations = sorted(float(r["duration_ms"]) for r in rows)
        limit = max(500.0, 5 * durations[len(durations) // 2])
        slow = [r for r in rows if float(r["duration_ms"]) > limit]
        if not slow:
            return f"none of {len(rows)} steps over {limit:.0f} ms"
        worst = max(slow, key=lambda r: float(r["duration_ms"]))
        duration, wait = float(worst["duration_ms"]), float(worst["wait_ms"])
        return (f"{len(slow)} of {len(rows)} steps over {limit:.0f} ms; the slowest {duration:.0f} ms "
                f"({worst['sequences']} sequences, {worst['decoder_tokens']} tokens, "
                f"{worst['encoder_items']} encoder items): host {duration - wait:.0f}, device wait {wait:.0f}")
    except (OSError, ValueError, TypeError, KeyError):  # a missing or cut-off log: no row
        return None


def main():
    out = sys.argv[1]
    ours = load(os.path.join(out, "ours_timing.json"))
    dense = load(os.path.join(out, "ours_timing_dense.json"))
    padded = load(os.path.join(out, "ours_timing_padded.json"))
    per_row = load(os.path.join(out, "ours_timing_rows.json"))
    tiles4 = load(os.path.join(out, "ours_timing_tiles4.json"))
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
            ("decode ms/step, batch 1, CUDA graph, reference context", "decode_b1_refctx_graph_ms_per_step",
             "decode_b1_refctx_ms_per_step"),
            ("decode tokens/s, batch 16, CUDA graph, reference context", "decode_b16_refctx_graph_tokens_per_s",
             "decode_b16_refctx_tokens_per_s"),
            ("prefill of a 10 s clip, ms (encoder + prompt)", "prefill_10s_ms", "prefill_10s_ms"),
            ("prefill of a 10 s clip, its decoder half alone, ms", "prefill_10s_decoder_ms", None),
            ("the same, host time to enqueue it (close to the line above: launch-bound), ms",
             "prefill_10s_decoder_host_ms", None),
            ("encoder, 10 s of audio, ms", "encoder_10s_ms", "encoder_30s_window_ms"),
            ("encoder, 30 s of audio, ms", "encoder_30s_ms", "encoder_30s_window_ms"),
            ("encoder, 10 s of audio, batched eager pass (no segment graphs), ms", "encoder_10s_eager_ms", None),
            ("encoder, 30 s of audio, batched eager pass (no segment graphs), ms", "encoder_30s_eager_ms", None),
            ("encoder, 10 s of audio, batched eager pass, host time to enqueue it, ms", "encoder_10s_eager_host_ms",
             None),
            ("encoder pass of four 10 s exact finals, segment graphs, ms", "encoder_finals_b4_ms", None),
            ("encoder pass of four 10 s exact finals, batched eager pass, ms", "encoder_finals_b4_eager_ms", None)]
    for name, ours_key, hf_key in rows:
        a, b = ours.get(ours_key), hf.get(hf_key)
        if a is None and "refctx_graph" in ours_key:  # no graph (fallback, refused capture): eager
            a = ours.get(ours_key.replace("_graph", ""))
        ratio = (b / a) if a and b and "tokens" not in ours_key else ((a / b) if a and b else None)
        print(f"| {name} | {fmt(a)} | {fmt(b)} | {times(ratio)} |")
    for batch in (1, 16, 64):
        a, b = dense.get(f"decode_b{batch}_ms_per_step"), hf.get(f"decode_b{batch}_ms_per_step")
        if a:
            print(f"| decode ms/step, batch {batch}, libtorch layers only (no kernels, no graph) | {fmt(a)} | "
                  f"{fmt(b)} | {times(b / a if b else None)} |")
    if ours.get("linears_b1_ms") is not None:
        print(f"| decoder matrices alone (one linear each, no attention), batch 1 / 16, ms (GB/s) | "
              f"{fmt(ours.get('linears_b1_ms'))} ({fmt(ours.get('linears_b1_GBps'), 0)}) / "
              f"{fmt(ours.get('linears_b16_ms'))} ({fmt(ours.get('linears_b16_GBps'), 0)}) | n/a | |")
    if ours.get("linears_b1_skinny_ms") is not None:
        print(f"| decoder matrices alone through the skinny GEMM kernel, batch 1, ms (GB/s) | "
              f"{fmt(ours.get('linears_b1_skinny_ms'))} ({fmt(ours.get('linears_b1_skinny_GBps'), 0)}) | n/a | |")
    # Device time of a decode step, part by part (model_timing.cc), at 1k and the reference context.
    for batch in ("1", "16", "64", "1_refctx", "16_refctx"):
        prefix = f"decode_b{batch}_part_"
        parts = [(k[len(prefix):-len("_us")], v) for k, v in ours.items()
                 if k.startswith(prefix) and k.endswith("_us")]
        if parts:
            listed = ", ".join(f"{name} {fmt(v)}" for name, v in parts)
            label = batch.replace("_refctx", ", reference context")
            print(f"| decode step, batch {label}, device us by part: {listed}; sum | "
                  f"{fmt(ours.get(f'decode_b{batch}_parts_sum_us'))} (step "
                  f"{fmt(best_graph_or_eager(ours, batch, 'ms_per_step'))} ms) | n/a | |")
    if ours.get("encoder_graphs_error"):
        print(f"| encoder segment graphs | off: {ours['encoder_graphs_error']} | n/a | |")
    if ours.get("skinny_gemm_timings"):
        print(f"| skinny GEMM chosen at load, per shape and rows, kernel/cuBLAS us | "
              f"{ours['skinny_gemm_timings']} | n/a | |")
    # The two halves of a streaming step under load (speechllm-model-timing), fewest items first.
    for items in sorted(int(k[len("encoder_chunks_b"):-len("_ms")]) for k in ours
                        if k.startswith("encoder_chunks_b") and k.endswith("_ms") and "final" not in k):
        print(f"| streaming step, {items} streams: encoder pass of {items} 1 s chunks "
              f"(with one exact final's 10 s re-encode), ms | {fmt(ours.get(f'encoder_chunks_b{items}_ms'))} "
              f"({fmt(ours.get(f'encoder_chunks_b{items}_with_final_ms'))}) | n/a | |")
        print(f"| streaming step, {items} streams: decoder pass of {items} chunk prefills "
              f"(27 tokens after 200), ms; libtorch layers only; chunk attention in the padded group; "
              f"PagedAttention one block per row (no tiles); in 4-row tiles (no tensor cores) "
              f"| {fmt(ours.get(f'prefill_chunks_b{items}_ms'))}; "
              f"{fmt(dense.get(f'prefill_chunks_b{items}_ms'))}; "
              f"{fmt(padded.get(f'prefill_chunks_b{items}_ms'))}; "
              f"{fmt(per_row.get(f'prefill_chunks_b{items}_ms'))}; "
              f"{fmt(tiles4.get(f'prefill_chunks_b{items}_ms'))} | n/a | |")
    # Every stream count the run measured (STREAMS="150 200" in run_bench.sh), fewest first.
    runs = []
    for name in os.listdir(out):
        if name.startswith("ours_streams_") and name.endswith(".json"):
            run = load(os.path.join(out, name))
            if run:
                runs.append(run)
    for run in sorted(runs, key=lambda r: r.get("streams", 0)):
        # Runs since 2026-11-29: each chunk until the first update that reflects it.
        chunk = (f", every chunk's first update {fmt(run.get('chunk_latency_ms_p95'), 0)}"
                 if run.get("chunk_latency_ms_p95") is not None else "")
        steady = ""
        if run.get("partial_latency_ms_p95_steady") is not None:
            steady = (f"; steady {fmt(run.get('steady_window_s'), 0)} s (starts over "
                      f"{fmt(run.get('stagger_ms', 0) / 1000, 0)} s): partial "
                      f"{fmt(run.get('partial_latency_ms_p95_steady'), 0)}, final "
                      f"{fmt(run.get('final_latency_ms_p95_steady'), 0)}")
        print(f"| concurrent real-time streams (1 s chunks), p95 ms | {run.get('streams')} streams: partial "
              f"{fmt(run.get('partial_latency_ms_p95'), 0)}, first partial "
              f"{fmt(run.get('first_partial_latency_ms_p95'), 0)}, final {fmt(run.get('final_latency_ms_p95'), 0)}"
              f"{chunk}{steady}"
              f"; RTF max {fmt(run.get('real_time_factor_max'), 3)}; decode-graph steps "
              f"{run.get('decode_graph_steps', 'n/a')} of {run.get('steps_recorded', 'n/a')}"
              f"; queue wait p95: partial {fmt(run.get('partial_queue_wait_ms_p95'), 0)}, final "
              f"{fmt(run.get('final_queue_wait_ms_p95'), 0)}"
              f"; encoder K/V peak {fmt(run.get('encoder_kv_peak_mib'), 0)} MiB; drafts kept "
              f"{run.get('draft_accepted_tokens', 'n/a')} of {run.get('draft_tokens', 'n/a')}"
              f"{reruns_note(run)} | n/a | |")
    # Run B logged six steps of 0.75-1.8 s that stalled every stream: a long host part points at the
    # host (module loading, allocation, planning), a long device wait at the device's work.
    run150 = load(os.path.join(out, "ours_streams_150.json"))
    if run150 and run150.get("device_wait_seconds") is not None:
        stages = (run150.get("encoder_seconds") or 0) + (run150.get("decoder_seconds") or 0)
        print(f"| 150 streams: engine time in its encoder and decoder stages, s; of it waiting for "
              f"the device (the rest is host work) | {fmt(stages)}; {fmt(run150['device_wait_seconds'])} "
              f"| n/a | |")
    slow = slow_steps(os.path.join(out, "steps_150.csv"))
    if slow:
        print(f"| 150 streams: slow steps; the slowest one's host part (its time less the wait for its "
              f"choices: host work, block copies, any other wait) and that wait, ms | {slow} | n/a | |")
    # run_bench.sh's split run: 150 streams with --sync_stages (device times per step half).
    split = audio_step_split(os.path.join(out, "steps_ours_split_150.csv"))
    if split:
        print(f"| 150 streams: steps carrying audio, encoder / decoder time, s "
              f"(device times with --sync_stages) | {split} | n/a | |")
    # run_bench.sh's STEP_BUDGETS: the 150-stream run again with smaller steps.
    for name in sorted(os.listdir(out)):
        if name.startswith("ours_budget_") and name.endswith(".json"):
            run = load(os.path.join(out, name))
            budget = name[len("ours_budget_"):-len(".json")].split("_")
            if run and len(budget) == 2:
                print(f"| {run.get('streams')} streams, steps of at most {budget[0]} tokens and {budget[1]} encoder "
                      f"positions: partial p95 (steady), final p95, ms | "
                      f"{fmt(run.get('partial_latency_ms_p95'), 0)} ({fmt(run.get('partial_latency_ms_p95_steady'), 0)}), "
                      f"{fmt(run.get('final_latency_ms_p95'), 0)} | n/a | |")
    # run_bench.sh's UPDATE_TOKENS: the 150-stream and 1-stream runs with partials as long as a
    # real model's (ours_update<tokens>_<streams>.json).
    for name in sorted(os.listdir(out)):
        parts = name[len("ours_update"):-len(".json")].split("_")
        if name.startswith("ours_update") and name.endswith(".json") and len(parts) == 2:
            run = load(os.path.join(out, name))
            if run:
                print(f"| {parts[1]} streams, partial updates of {parts[0]} tokens (a real model's per second of "
                      f"speech; not the judged figure): partial p95 (steady), first partial p95, final p95, ms | "
                      f"{fmt(run.get('partial_latency_ms_p95'), 0)} ({fmt(run.get('partial_latency_ms_p95_steady'), 0)}), "
                      f"{fmt(run.get('first_partial_latency_ms_p95'), 0)}, "
                      f"{fmt(run.get('final_latency_ms_p95'), 0)} | n/a | |")
    if runs:
        streams_met = capacity(runs)
        tried = ", ".join(str(n) for n in sorted(r.get("streams", 0) for r in runs if r.get("streams", 0) > 1))
        print(f"| concurrent real-time streams (1 s chunks) at partial p95 <= 300 ms, the most measured | "
              f"{streams_met if streams_met else 'none of ' + tried} | n/a | |")
    ours_peak = None
    try:
        with open(os.path.join(out, "gpu_memory_mib.log")) as f:
            ours_peak = max(int(line) for line in f if line.strip().isdigit()) / 1024
    except (OSError, ValueError):
        pass
    print(f"| peak GPU memory, GiB (ours: whole card while our stages ran) | {fmt(ours_peak)} | "
          f"{fmt(hf.get('peak_memory_GiB'))} | |")
    bound = ours.get("decode_bound_ms")
    best_b1 = best_graph_or_eager(ours, 1, "ms_per_step")
    if bound:
        print(f"| decode batch 1 bound: {ours.get('decode_weight_bytes', 0) / 1e9:.2f} GB of weights / "
              f"{fmt(ours.get('copy_bandwidth_GBps'), 0)} GB/s copy bandwidth, ms | {fmt(bound)} | | "
              f"ours {fmt(best_b1 / bound if best_b1 else None)}x the bound (target <= 1.3x) |")
    print()
    try:  # a path that failed its GPU test is not timed (run_bench.sh): say which one was
        with open(os.path.join(out, "stages.log")) as f:
            for line in f:
                if line.startswith("FALLBACK"):
                    print(f"- {line.strip()}")
    except OSError:
        pass
    for key in sorted(k for k in ours if k.endswith("_error")):  # model_timing's refused captures, parts
        print(f"- {key}: {' / '.join(str(ours[key]).splitlines())}")
    print_targets(card_name(env), ours, runs, best_b1, bound)
    print()
    print("HF encoder always runs the padded 30 s window (its cost does not depend on the clip length).")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--meets-target":  # run_bench.sh's capacity search
        sys.exit(0 if meets_partial_target(load(sys.argv[2])) else 1)
    main()
