#!/usr/bin/env bash
# Coverage-guided fuzzing of the audio decoders (tools/fuzz/audio_decoder_fuzz.cc) with clang's
# libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer. Not part of CI; needs clang and
# opus-tools, mkvtoolnix and sox besides the project's build dependencies (scripts/setup_debian.sh).
#   tools/fuzz/run_audio_fuzz.sh [SECONDS] [WORK_DIR]   (default: 300 s in ./build-fuzz)
# The seed corpus is made from the golden clip (Ogg Opus, WebM Opus, FLAC, WAV, PCM, float, G.711);
# findings are written to WORK_DIR/artifacts and make the script fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-300}
work=${2:-$root/build-fuzz}
jobs=${SPEECHLLM_JOBS:-$(nproc)}
mkdir -p "$work/corpus" "$work/artifacts"
cd "$work"

deps=(opus ogg flac soxr absl_status absl_statusor absl_strings absl_cord absl_span)
# shellcheck disable=SC2046
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root" $(pkg-config --cflags "${deps[@]}") "$root/tools/fuzz/audio_decoder_fuzz.cc" \
  "$root"/streaming/{audio_decoder,ebml,flac_decoder,g711_decoder,ogg_opus_decoder,opus_link_decoder,opus_packet_decoder,pcm_decoder,resampler,sniffing_decoder,wav_stream_decoder,webm_opus_decoder}.cc \
  $(pkg-config --libs "${deps[@]}") -o audio_decoder_fuzz

# Seeds: three header bytes (encoding and rate, channels and output rate, chunk size; see the
# target) before real audio of each kind.
clip="$root/tests/data/qwen2-audio-tiny-golden/clip_a.wav"
opusenc --quiet --bitrate 24 "$clip" clip.opus
mkvmerge -q --webm -o clip.webm clip.opus
sox "$clip" -r 22050 -c 2 clip.flac
sox "$clip" -r 44100 -b 24 clip24.wav
python3 - "$clip" <<'PY'
import struct, sys
opus = open("clip.opus", "rb").read()
webm = open("clip.webm", "rb").read()
flac = open("clip.flac", "rb").read()
wav = open(sys.argv[1], "rb").read()
wav24 = open("clip24.wav", "rb").read()
pcm = open(sys.argv[1], "rb").read()[44:44 + 6400]
seeds = {
    "ogg_full": bytes([4, 0, 100]) + opus,
    "ogg_small_chunks": bytes([4 + 10 * 6, 0, 3]) + opus[:6000],
    "webm_full": bytes([6, 0, 100]) + webm,
    "webm_small_chunks": bytes([6, 10, 2]) + webm[:6000],
    "flac_full": bytes([7, 0, 100]) + flac[:12000],
    "flac_small_chunks": bytes([7, 0, 1]) + flac[:5000],
    "sniffed_webm": bytes([8, 0, 50]) + webm[:8000],
    "sniffed_flac": bytes([8, 0, 50]) + flac[:8000],
    "wav_stream": bytes([9, 0, 50]) + wav[:8000],
    "wav_stream_24bit": bytes([9, 0, 3]) + wav24[:4000],
    "pcm16": bytes([10 * 3, 1, 50]) + pcm,
    "pcm16_stereo_44k": bytes([10 * 5, 12, 20]) + pcm,
    "f32": bytes([1 + 10 * 3, 1, 40]) + struct.pack("<400f", *[((i % 50) - 25) / 30 for i in range(400)]),
    "mulaw": bytes([2 + 10, 1, 40]) + pcm[:2000],
}
for name, data in seeds.items():
    open("corpus/" + name, "wb").write(data)
PY

rm -f artifacts/*
./audio_decoder_fuzz -max_len=16384 -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" \
  -artifact_prefix=artifacts/ corpus > fuzz.log 2>&1 || true
cat fuzz-*.log > workers.log 2>/dev/null || true
execs=$(grep -ho "#[0-9]*" workers.log | tr -d '#' | sort -n | tail -1)
echo "run_audio_fuzz.sh: ${seconds} s x ${jobs} workers, up to ${execs:-0} executions per worker," \
  "corpus of $(find corpus -type f | wc -l) inputs"
if compgen -G "artifacts/*" >/dev/null; then
  echo "run_audio_fuzz.sh: findings in $work/artifacts:" >&2
  ls -la artifacts >&2
  grep -h -A20 "ERROR\|runtime error\|deadly signal" workers.log | head -60 >&2
  exit 1
fi
echo "run_audio_fuzz.sh: no findings"
