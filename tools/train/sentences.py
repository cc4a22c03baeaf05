#!/usr/bin/env python3
"""Sentence generator for the small trained model (issue 9): digits, numbers, times, dates, spelled
letters, short commands and template sentences over words.py. Each sentence has a written form (the
transcript the model learns, lower case except spelled letters) and a spoken form (what espeak-ng
reads; it differs only where espeak-ng would read the written form otherwise).

  tools/train/sentences.py --count 1000 --seed 1 [--exclude FILE]   # prints written<TAB>spoken
"""
import argparse
import random
import sys

import words as w

LETTER_SPOKEN = {"A": "ay"}  # espeak-ng reads a lone "A" as the article


def number_text(rng):
    kind = rng.random()
    if kind < 0.5:
        return str(rng.randint(0, 100))
    if kind < 0.85:
        return str(rng.randint(100, 999))
    return str(rng.randint(1000, 9999))


def ordinal(n):
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def time_text(rng):
    hour = rng.randint(1, 12)
    minute = rng.choice([0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, rng.randint(0, 59)])
    written = f"{hour}:{minute:02d}"
    tail = rng.choice(["", "", " am", " pm"])
    spoken = written + {"": "", " am": " a m", " pm": " p m"}[tail]
    return written + tail, spoken


def date_text(rng):
    month = rng.choice(w.MONTHS)
    day = ordinal(rng.randint(1, 31))
    form = rng.random()
    if form < 0.4:
        return f"{month} {day}"
    if form < 0.7:
        return f"the {day} of {month}"
    return f"{rng.choice(w.WEEKDAYS)} {month} {day}"


def pair(text):
    return text, text


def digits(rng):
    return pair(" ".join(str(rng.randint(0, 9)) for _ in range(rng.randint(3, 8))))


def numbers(rng):
    n = number_text(rng)
    return pair(rng.choice([
        n, f"the number is {n}", f"i need {n} {rng.choice(w.NOUNS)}", f"it costs {n} dollars",
        f"page {n}", f"about {n} people", f"room {n}", f"add {n} and {number_text(rng)}",
    ]))


def times(rng):
    written, spoken = time_text(rng)
    frame = rng.choice(["{}", "at {}", "it is {}", "meet me at {}", "the train leaves at {}",
                        "wake me up at {}", "dinner is at {}", "from {} to {}"])
    if frame.count("{}") == 2:
        w2, s2 = time_text(rng)
        return frame.format(written, w2), frame.format(spoken, s2)
    return frame.format(written), frame.format(spoken)


def dates(rng):
    d = date_text(rng)
    return pair(rng.choice([d, f"on {d}", f"my birthday is {d}", f"the meeting is on {d}",
                            f"we leave on {d}", f"today is {d}"]))


def letters(rng):
    chosen = [chr(ord("A") + rng.randint(0, 25)) for _ in range(rng.randint(2, 6))]
    written = " ".join(chosen)
    spoken = ", ".join(LETTER_SPOKEN.get(c, c) for c in chosen)
    if rng.random() < 0.3:
        return "spell " + written, "spell " + spoken
    return written, spoken


def commands(rng):
    noun, place = rng.choice(w.NOUNS), rng.choice(w.PLACES)
    t_written, t_spoken = time_text(rng)
    n = str(rng.randint(1, 60))
    options = [
        pair(f"turn {rng.choice(['on', 'off'])} the {place} lights"),
        pair(f"set a timer for {n} {rng.choice(['minutes', 'seconds', 'hours'])}"),
        (f"set an alarm for {t_written}", f"set an alarm for {t_spoken}"),
        pair(f"call {rng.choice(w.NAMES)}"),
        pair(f"send a message to {rng.choice(w.NAMES)}"),
        pair(f"play some {rng.choice(['music', 'jazz', 'news', 'songs', 'radio'])}"),
        pair(f"what is the weather {rng.choice(['today', 'tomorrow', 'on ' + rng.choice(w.WEEKDAYS)])}"),
        pair(f"remind me to {rng.choice(w.VERBS)[0]} the {noun}"),
        pair(f"open the {rng.choice(['door', 'window', 'gate', 'box', 'map'])}"),
        pair(f"stop"), pair("next"), pair("go back"), pair("cancel that"), pair("yes please"),
        pair(f"how far is the {place}"),
        pair(f"turn the volume {rng.choice(['up', 'down'])}"),
        pair(f"add {noun} to my list"),
        pair(f"show me the {noun}"),
    ]
    return rng.choice(options)


def subject(rng):
    r = rng.random()
    if r < 0.35:
        return rng.choice(w.PRONOUNS), "pronoun"
    if r < 0.6:
        return rng.choice(w.NAMES), "name"
    return f"{rng.choice(w.DETERMINERS)} {rng.choice(w.ADJECTIVES + [''] * 40)} {rng.choice(w.NOUNS)}".replace("  ", " "), "noun"


def vocabulary(rng):
    (subj, kind) = subject(rng)
    if kind == "pronoun":
        subj_text, be_present, be_past = subj
    else:
        subj_text, be_present, be_past = subj, "is", "was"
    verb = rng.choice(w.VERBS)
    obj = f"{rng.choice(w.DETERMINERS)} {rng.choice(w.NOUNS)}"
    templates = [
        f"{subj_text} {verb[2]} {obj}",
        f"{subj_text} {verb[2]} {obj} {rng.choice(w.ADVERBS)}",
        f"{subj_text} {be_past} very {rng.choice(w.ADJECTIVES)}",
        f"{subj_text} {be_present} {rng.choice(w.ADJECTIVES)} {rng.choice(w.ADVERBS)}",
        f"{subj_text} {verb[2]} {obj} {rng.choice(w.PREPOSITIONS)} the {rng.choice(w.NOUNS)}",
        f"{subj_text} went to the {rng.choice(w.PLACES)} on {rng.choice(w.WEEKDAYS)}",
        f"can you {verb[0]} {obj} please",
        f"please {verb[0]} the {rng.choice(w.ADJECTIVES)} {rng.choice(w.NOUNS)}",
        f"{rng.choice(w.NAMES)} and {rng.choice(w.NAMES)} {verb[2]} {obj}",
        f"why did {subj_text} {verb[0]} {obj}",
        f"the {rng.choice(w.NOUNS)} {verb[1]} {obj} {rng.choice(w.PREPOSITIONS)} the {rng.choice(w.PLACES)}",
        f"there {be_past if kind != 'pronoun' else 'was'} a {rng.choice(w.ADJECTIVES)} {rng.choice(w.NOUNS)} {rng.choice(w.PREPOSITIONS)} the {rng.choice(w.NOUNS)}",
    ]
    return pair(rng.choice(templates))


CATEGORIES = [(digits, 0.1), (numbers, 0.1), (times, 0.08), (dates, 0.08), (letters, 0.07),
              (commands, 0.17), (vocabulary, 0.4)]


def sentence(rng):
    r, acc = rng.random(), 0.0
    for make, weight in CATEGORIES:
        acc += weight
        if r < acc:
            return make(rng)
    return vocabulary(rng)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--exclude", help="file of written<TAB>spoken lines whose sentences to skip")
    args = parser.parse_args()
    excluded = set()
    if args.exclude:
        with open(args.exclude, encoding="utf-8") as f:
            excluded = {line.split("\t")[0] for line in f}
    rng = random.Random(args.seed)
    seen = set()
    out = sys.stdout
    while len(seen) < args.count:
        written, spoken = sentence(rng)
        written, spoken = " ".join(written.split()), " ".join(spoken.split())
        if written in seen or written in excluded:
            continue
        seen.add(written)
        out.write(f"{written}\t{spoken}\n")


if __name__ == "__main__":
    main()
