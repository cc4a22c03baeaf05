#!/usr/bin/env python3
"""Makes the speech data of the small trained model (issue 9) at run time: sentences from
sentences.py spoken by espeak-ng (accents x voice variants x speed x pitch) and augmented with sox
(tempo, reverb, telephone band, gain, silence padding) plus sox-made noise mixed at a chosen SNR.

  tools/train/make_data.py --out DIR [--train 24000] [--test 200] [--jobs 2]

DIR/train.pcm   all training clips, 16 kHz mono S16LE, back to back
DIR/train.tsv   offset_samples<TAB>num_samples<TAB>voice<TAB>written text
DIR/test/*.wav  held-out clips (sentences and voice variants never used for training)
DIR/test.tsv    clip_id<TAB>voice<TAB>written text
"""
import argparse
import array
import math
import multiprocessing
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentences  # noqa: E402

SAMPLE_RATE = 16000
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc"]
VARIANTS = """Alex Alicia Andrea Andy AnxiousAndy Denis Diogo Gene Gene2 Henrique Hugo Jacky Lee
Marco Mario Michael Mike Mr_serious Nguyen RicishayMax Storm Tweaky adam anika announcer antonio
aunty belinda benjamin boris caleb david ed edward f1 f2 f3 f5 fast grandma grandpa gustave iven
iven2 iven4 kaukovalta klatt klatt2 klatt3 klatt5 klatt6 linda m1 m2 m3 m4 m5 m7 m8 marcelo max
michel miguel norbert pablo paul pedro quincy rob robert sandro shelby steph steph2 travis victor
zac""".split()
# Never used for training.
TEST_VARIANTS = "f4 m6 klatt4 Annie edward2 iven3 steph3 john".split()
SNR_DB = [10, 15, 20, 30]


def voice_for(rng, variants):
    variant = rng.choice(variants + [""])  # "" = the accent's own voice
    voice = rng.choice(ACCENTS) + (("+" + variant.replace("_", " ")) if variant else "")
    return voice, rng.randint(120, 210), rng.randint(25, 75)


def sox_effects(rng):
    effects = []
    if rng.random() < 0.4:
        effects += ["tempo", f"{rng.uniform(0.85, 1.15):.3f}"]
    if rng.random() < 0.25:
        effects += ["reverb", str(rng.randint(10, 60)), "50", str(rng.randint(20, 90))]
    if rng.random() < 0.15:
        effects += ["sinc", "300-3400"]
    effects += ["gain", "-n", f"{rng.uniform(-18, -2):.1f}"]
    effects += ["pad", f"{rng.uniform(0.05, 0.35):.2f}", f"{rng.uniform(0.05, 0.35):.2f}"]
    return effects


def run(cmd, stdin=None):
    return subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=True).stdout


def synthesize(job):
    """Returns (voice description, S16LE bytes) of one clip."""
    seed, spoken, variants = job
    rng = random.Random(seed)
    voice, speed, pitch = voice_for(rng, variants)
    wav = run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", spoken])
    raw = ["-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed", "-b", "16", "-c", "1"]
    pcm = run(["sox", "-t", "wav", "-", *raw, "-"] + sox_effects(rng), stdin=wav)
    samples = array.array("h", pcm)
    description = f"{voice} s{speed} p{pitch}"
    if rng.random() < 0.5 and len(samples) > 0:
        snr = rng.choice(SNR_DB)
        color = rng.choice(["whitenoise", "pinknoise", "brownnoise"])
        noise = array.array("h", run(["sox", "-n", *raw, "-", "synth",
                                      f"{len(samples) / SAMPLE_RATE:.4f}", color, "vol", "0.3"]))
        n = min(len(samples), len(noise))
        signal_power = sum(s * s for s in samples) / max(1, len(samples))
        noise_power = sum(s * s for s in noise[:n]) / max(1, n)
        if signal_power > 0 and noise_power > 0:
            scale = math.sqrt(signal_power / (noise_power * 10 ** (snr / 10)))
            for i in range(n):
                samples[i] = max(-32768, min(32767, int(samples[i] + scale * noise[i])))
        description += f" {color} {snr}dB"
    return description, samples.tobytes()


def write_wav(path, pcm):
    header = (b"RIFF" + (36 + len(pcm)).to_bytes(4, "little") + b"WAVEfmt " +
              (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") +
              SAMPLE_RATE.to_bytes(4, "little") + (2 * SAMPLE_RATE).to_bytes(4, "little") +
              (2).to_bytes(2, "little") + (16).to_bytes(2, "little") + b"data" +
              len(pcm).to_bytes(4, "little"))
    with open(path, "wb") as f:
        f.write(header + pcm)


def make_sentences(count, seed, exclude=None):
    args = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sentences.py"),
            "--count", str(count), "--seed", str(seed)]
    if exclude:
        args += ["--exclude", exclude]
    lines = run(args).decode("utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--train", type=int, default=24000)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    os.makedirs(os.path.join(args.out, "test"), exist_ok=True)
    test = make_sentences(args.test, args.seed + 1000)
    test_sentences = os.path.join(args.out, "test_sentences.tsv")
    with open(test_sentences, "w", encoding="utf-8") as f:
        f.writelines(f"{written}\t{spoken}\n" for written, spoken in test)
    train = make_sentences(args.train, args.seed, exclude=test_sentences)
    with multiprocessing.Pool(args.jobs) as pool:
        jobs = [(args.seed * 7919 + 1000003 + i, spoken, TEST_VARIANTS)
                for i, (_, spoken) in enumerate(test)]
        with open(os.path.join(args.out, "test.tsv"), "w", encoding="utf-8") as index:
            for i, (description, pcm) in enumerate(pool.imap(synthesize, jobs)):
                clip_id = f"test_{i:04d}"
                write_wav(os.path.join(args.out, "test", clip_id + ".wav"), pcm)
                index.write(f"{clip_id}\t{description}\t{test[i][0]}\n")
        jobs = [(args.seed * 7919 + i, spoken, VARIANTS) for i, (_, spoken) in enumerate(train)]
        offset = 0
        with open(os.path.join(args.out, "train.pcm"), "wb") as pcm_file, \
                open(os.path.join(args.out, "train.tsv"), "w", encoding="utf-8") as index:
            for i, (description, pcm) in enumerate(pool.imap(synthesize, jobs, chunksize=16)):
                pcm_file.write(pcm)
                index.write(f"{offset}\t{len(pcm) // 2}\t{description}\t{train[i][0]}\n")
                offset += len(pcm) // 2
                if (i + 1) % 2000 == 0:
                    print(f"make_data: {i + 1}/{len(train)} clips, {offset / SAMPLE_RATE / 3600:.2f} h",
                          file=sys.stderr, flush=True)
    print(f"make_data: {len(train)} training clips ({offset / SAMPLE_RATE / 3600:.2f} h), "
          f"{len(test)} test clips in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
