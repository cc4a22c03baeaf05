#!/usr/bin/env python3
"""Writes tests/data/tokenizer/corpus.txt, the text that the tokenizer reference test encodes with
both the npm Qwen tokenizer and ours. Deterministic (fixed seed); rerun after editing and commit the
output. One test input per line; the escapes \\n \\t \\r and \\\\ stand for newline, tab, carriage
return and backslash (tests/integration/tokenizer unescapes them), so multi-line inputs fit.

Usage: python3 tools/tokenizer/make_reference_corpus.py [OUT]   (default: tests/data/tokenizer/corpus.txt)

Letters and digits new in Unicode 15 are left out: PCRE2 10.42 knows Unicode 14, Node 20 Unicode 15.
The characters whose \\s membership differs between the regex engines (U+0085 NEL, U+180E, U+FEFF)
and U+017F after an apostrophe are in the "engine_edges" section; their ids agree because no merge
crosses them.
"""
import os
import random
import sys
import unicodedata

rng = random.Random(20241127)
lines = []


def add(section, text):
    lines.append((section, text))


def esc(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


# ---------------------------------------------------------------- English prose
SUBJECTS = ["The recogniser", "A small model", "Our streaming server", "The old lighthouse keeper",
            "Every listener", "My neighbour's cat", "The committee", "A tired engineer", "The choir",
            "Nobody in the room", "The weather station", "Her grandmother", "The night train",
            "A careful reader", "The orchestra", "This microphone", "The harbour master", "Two owls"]
VERBS = ["transcribes", "ignores", "remembers", "repeats", "measures", "follows", "paints",
         "questions", "borrows", "whistles at", "counts", "describes", "collects", "mends",
         "interrupts", "celebrates", "forgets", "translates"]
OBJECTS = ["the morning announcements", "every third syllable", "a quiet conversation",
           "the distant thunder", "forty-two umbrellas", "the last chapter", "a broken violin",
           "the shipping forecast", "seventeen postcards", "a list of names", "the river's edge",
           "an unfinished symphony", "the latency budget", "a handful of acorns", "the town clock"]
TAILS = [".", "!", "?", "...", " before lunch.", ", mostly.", " (again).", " -- or so they say.",
         "; nobody minds.", ": twice.", " without a sound.", " at dawn.", "?!", " \u2014 quietly.",
         ", doesn't it?", " \u201cjust in case\u201d.", " [citation needed].", " & then some."]
for _ in range(900):
    s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}"
    r = rng.random()
    if r < 0.15:
        s = s.upper()
    elif r < 0.25:
        s = s.lower()
    elif r < 0.35:
        s = s + " " + f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."
    add("prose", s)
PROSE = [
    "Streaming speech recognition turns a continuous flow of audio into text with little delay.",
    "She read the letter twice, folded it along the old creases, and put it back in the drawer.",
    "Rain hammered the tin roof while the kettle began, very slowly, to sing.",
    "The quick brown fox jumps over the lazy dog; the lazy dog does not seem to care.",
    "Mr. and Mrs. O'Neill arrived at 5 p.m., exactly on time, which surprised everyone.",
    "\"Are you sure?\" he asked. \"Quite sure,\" she replied, 'as sure as I'll ever be.'",
    "It was the kind of silence that has a texture, like felt or fresh snow.",
    "Naïve coöperation between façade engineers and the café's maître d' is rare.",
    "The résumé listed Zürich, São Paulo, Kraków and Reykjavík as previous homes.",
    "Hyphenated words like state-of-the-art, well-known and mother-in-law appear often.",
    "URLs such as https://example.com/path?query=1&x=y#frag and e-mails like a.b@c.io appear too.",
    "Dr. Smith's 3rd-floor office (room 4B) is next to the vending machine.",
    "    Indented prose keeps its four leading spaces.",
    "Trailing spaces stay put.   ",
    "Ellipses\u2026 and em dashes\u2014like these\u2014and en dashes (1990\u20132000) are punctuation.",
    "\u00bfD\u00f3nde est\u00e1 la biblioteca? \u00a1Aqu\u00ed mismo!",
    "Gr\u00fc\u00df Gott! Die Stra\u00dfe hei\u00dft \u00bbAm Wasser\u00ab.",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u041a\u0430\u043a \u0434\u0435\u043b\u0430?",
    "\u0393\u03b5\u03b9\u03b1 \u03c3\u03bf\u03c5 \u03ba\u03cc\u03c3\u03bc\u03b5, \u03c4\u03b9 \u03ba\u03ac\u03bd\u03b5\u03b9\u03c2;",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a \u0e22\u0e34\u0e19\u0e14\u0e35\u0e15\u0e49\u0e2d\u0e19\u0e23\u0e31\u0e1a",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 nhi\u1ec1u d\u1ea5u thanh.",
]
for p in PROSE:
    add("prose", p)
    add("prose", p + "\n" + rng.choice(PROSE))

# ---------------------------------------------------------------- contractions
CONTRACTED = ["it's", "that's", "he's", "she's", "there's", "what's", "we're", "they're", "you're",
              "we'll", "they'll", "I'll", "you'll", "I've", "we've", "they've", "could've", "I'm",
              "I'd", "you'd", "he'd", "we'd", "don't", "can't", "won't", "isn't", "wasn't",
              "shouldn't", "ain't", "y'all", "o'clock", "rock 'n' roll", "'tis", "'twas", "ma'am",
              "James's", "the dogs'", "Ross's", "the '90s", "'s", "'t", "''s", "'re'", "'LL", "'Ve",
              "'D", "'M", "''ll've"]
FRAMES = ["{0} fine, {1} not.", "Well, {0}.", "{0}{1}", "\"{0},\" she said, \"{1}.\"",
          "{0} and {1} and {2}.", "({0}) [{1}] {{{2}}}", "{0}\n{1}", "{0}'{1}", " {0} {1} "]
for _ in range(520):
    words = [rng.choice(CONTRACTED) for _ in range(3)]
    r = rng.random()
    if r < 0.3:
        words = [w.upper() for w in words]
    elif r < 0.45:
        words = [w.title() for w in words]
    elif r < 0.55:
        words = ["".join(c.upper() if rng.random() < 0.5 else c for c in w) for w in words]
    add("contractions", rng.choice(FRAMES).format(*words))

# ---------------------------------------------------------------- numbers
for _ in range(460):
    k = rng.randrange(12)
    if k == 0:
        s = str(rng.randrange(10 ** rng.randrange(1, 25)))
    elif k == 1:
        s = f"{rng.uniform(-1e6, 1e6):.{rng.randrange(0, 9)}f}"
    elif k == 2:
        s = f"${rng.randrange(1, 10**7):,}.{rng.randrange(100):02d} total"
    elif k == 3:
        s = f"{rng.randrange(1900, 2100)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"
    elif k == 4:
        s = f"+{rng.randrange(1, 99)} ({rng.randrange(100, 999)}) {rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}"
    elif k == 5:
        s = f"{rng.randrange(100)}% of {rng.randrange(10**4)} items, {rng.randrange(1,5)}st/{rng.randrange(2,9)}nd/{rng.randrange(3,9)}th"
    elif k == 6:
        s = f"{rng.random():.3e} and {rng.randrange(10)}.{rng.randrange(10**6)}E-{rng.randrange(40)}"
    elif k == 7:
        s = "v" + ".".join(str(rng.randrange(30)) for _ in range(rng.randrange(2, 5)))
    elif k == 8:
        s = "0x" + "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(rng.randrange(2, 17)))
    elif k == 9:  # other scripts' digits and number-like letters
        s = rng.choice(["\u0663\u0664\u0665 \u0661\u0662", "\uff11\uff12\uff13\uff14", "\u0967\u0968\u0969",
                        "x\u00b2 + y\u00b3 = z\u2074", "\u00bd \u00bc \u00be \u2153", "\u2160\u2161\u2162 \u216b",
                        "\u2460\u2461\u2462", "\u4e00\u4e8c\u4e09 123 \u56db\u4e94", "\U0001d7d8\U0001d7d9\U0001d7da",
                        "\u0e51\u0e52\u0e53", "\u09e7\u09e8\u09e9"])
        s += " " + str(rng.randrange(10**5))
    elif k == 10:
        s = " ".join(str(rng.randrange(10**rng.randrange(1, 6))) for _ in range(rng.randrange(2, 9)))
    else:
        s = f"Call 555-{rng.randrange(1000, 9999)} before {rng.randrange(1, 13)}:{rng.randrange(60):02d} on the {rng.randrange(1, 32)}th."
    add("numbers", s)

# ---------------------------------------------------------------- Chinese, Japanese, Korean
ZH = ["今天天气很好", "我们去公园散步吧", "这个模型可以实时识别语音", "请把窗户关上", "他昨天晚上没有睡好",
      "会议推迟到下午三点", "火车马上就要开了", "图书馆里非常安静", "妈妈做的饺子最好吃", "学习一门新语言需要耐心",
      "服务器的延迟大约是两百毫秒", "请再说一遍", "外面下着小雨", "孩子们在操场上踢足球", "这本书我已经读了三遍",
      "山上的空气很新鲜", "我们明天早上八点出发", "你听到那个声音了吗", "录音的质量不太好", "谢谢你的帮助",
      "繁體中文也應該正確處理", "語音辨識系統", "𠮷野家的牛丼", "龍龘齉"]
JA = ["今日はいい天気ですね", "駅まで歩いて十分です", "音声認識のテストをしています", "もう一度言ってください",
      "カタカナとひらがなと漢字", "東京タワーに行きたい", "コーヒーを一杯お願いします", "ありがとうございました",
      "明日は雨が降るかもしれません", "この本はとても面白い", "ｶﾀｶﾅ半角もあります", "ラーメンが大好きです",
      "静かな夜に虫の声が聞こえる", "会議は午後三時からです", "日本語の文章を分割する"]
KO = ["안녕하세요", "오늘 날씨가 정말 좋네요", "음성 인식 시스템을 시험하고 있습니다", "다시 한 번 말씀해 주세요",
      "지하철역까지 걸어서 십 분 걸려요", "커피 한 잔 주세요", "감사합니다", "내일 비가 올 것 같아요",
      "이 책은 정말 재미있어요", "한국어 문장을 나누는 시험", "서울의 밤은 아름답다", "회의는 오후 세 시에 시작합니다"]
PUNCT_ZH = ["。", "，", "！", "？", "、", "：", "；", "……", "「", "」", "《", "》", "（", "）"]
for pool, count, section in ((ZH, 420, "chinese"), (JA, 320, "japanese"), (KO, 320, "korean")):
    for _ in range(count):
        parts = [rng.choice(pool) for _ in range(rng.randrange(1, 4))]
        sep = rng.choice(PUNCT_ZH + [" ", "", ", ", ". "]) if section != "korean" else rng.choice([" ", ". ", ", ", "! ", "? "])
        s = sep.join(parts) + rng.choice(PUNCT_ZH if section != "korean" else [".", "?", "!", ""])
        if rng.random() < 0.2:
            s = s + " " + rng.choice(["OK", "GPU 2 張", "Qwen2-Audio", "123", "test", "😀"])
        if rng.random() < 0.1:
            s = rng.choice(["English then ", "(", "\"", "  "]) + s
        add(section, s)

# ---------------------------------------------------------------- emoji and other 4-byte characters
EMOJI = ["😀", "😂", "🥲", "👍", "👍🏽", "👍🏿", "🙏", "🎉", "🔥", "❤️", "❤", "✨", "🚀", "🌧️", "☕",
         "👨‍👩‍👧‍👦", "👩‍💻", "🧑🏾‍🚀", "🏳️‍🌈", "🏴‍☠️", "❤️‍🔥", "🐈‍⬛", "🇯🇵", "🇺🇸", "🇩🇪", "🇰🇷",
         "1️⃣", "#️⃣", "*️⃣", "🫠", "🦀", "🐍", "🎵", "𝄞", "🀄", "🂡", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"]
FOURBYTE = ["𝐇𝐞𝐥𝐥𝐨", "𝕄𝕒𝕥𝕙", "𝓈𝒸𝓇𝒾𝓅𝓉", "𠀀𠀁𠀂", "𪚥", "𐌰𐌱𐌲", "𐐀𐐨", "𒀀𒀁", "𓀀𓀁", "𖼀", "𞤀𞤢"]
for _ in range(420):
    k = rng.randrange(5)
    if k == 0:
        s = "".join(rng.choice(EMOJI) for _ in range(rng.randrange(1, 8)))
    elif k == 1:
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(EMOJI)} {rng.choice(OBJECTS)}{rng.choice(EMOJI)}"
    elif k == 2:
        s = rng.choice(FOURBYTE) + rng.choice(["", " ", "!", "123", "abc", "的"]) + rng.choice(FOURBYTE)
    elif k == 3:
        s = rng.choice(ZH) + rng.choice(EMOJI) + rng.choice(JA) + " " + rng.choice(EMOJI)
    else:
        s = " ".join(rng.choice(EMOJI + FOURBYTE + ["word", "it's", "42"]) for _ in range(rng.randrange(2, 9)))
    add("emoji", s)

# ---------------------------------------------------------------- combining marks, NFC and NFD
BASE_WORDS = ["café", "naïve", "résumé", "Ångström", "Zoë", "piñata", "Việt Nam", "Tiếng Việt",
              "crème brûlée", "São João", "Dvořák", "Łódź", "Øresund", "Þór", "ǅemal", "ﬁnance",
              "한국어", "가나다", "ñandú", "Ἀθῆναι", "ελληνικά", "Ġdańsk", "ṩ", "x̂ȳ", "q̃", "e\u0301\u0327",
              "\u212b", "\u2126", "\u212a", "\uf900\uf901", "\u1e9b\u0323", "\u0958\u0959", "\u1100\u1161\u11a8",
              "a\u0308\u0301", "Z\u0324\u0354\u0367\u0311\u0313a\u0308\u0356\u032d\u0308\u0307l\u036e\u0312\u036b",
              "1\u20e3", "\u0915\u094d\u0937", "\u0627\u064e\u0644\u0652\u0639\u064e\u0631\u064e\u0628\u0650\u064a\u064e\u0651\u0629",
              "\u05e9\u05c1\u05b8\u05dc\u05d5\u05b9\u05dd"]
for _ in range(440):
    w = rng.choice(BASE_WORDS)
    form = rng.choice(["NFC", "NFD", "asis", "NFD"])
    if form != "asis":
        w = unicodedata.normalize(form, w)
    s = rng.choice(["{0}", "The word {0} matters.", "{0} {0}", "({0})", "{0}'s", "{0}\n{0}", " {0}", "{0}123"]).format(w)
    add("combining", s)

# ---------------------------------------------------------------- code
CODE = [
    "int main(int argc, char** argv) {\n  return argc > 1 ? 0 : 1;\n}",
    "for (size_t i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}",
    "def f(x):\n    if x < 0:\n        return -x\n    return x ** 2",
    "const re = /^[a-z0-9_]+$/i; // match identifiers",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "git commit -m \"Fix off-by-one in tokenizer\" && git push origin main",
    "<div class=\"row\"><span id='x'>Hello &amp; goodbye</span></div>",
    "#include <vector>\n#include \"engine/model/tokenizer/tokenizer.h\"",
    "std::unique_ptr<Tokenizer> tok = *Tokenizer::FromDirectory(dir);",
    "printf(\"%d items\\\\n\", count);  /* escaped newline stays text */",
    "x+=1;y-=2;z*=3;w/=4;v%=5;u<<=1;t>>=2;s&=t;r|=s;q^=r;",
    "if (a && b || !c) { return a->b.c[0]; }",
    "lambda x: [i for i in range(x) if i % 2 == 0]",
    "    \t  mixed_indent = True",
    "fn main() {\n    let v: Vec<u8> = vec![0xFF; 16];\n    println!(\"{:?}\", v);\n}",
    "echo $HOME; ls -la | grep '\\.cc$' > files.txt 2>&1",
    "a = {'x': 1, \"y\": [2, 3]}  # comment with 'quotes'",
    "@decorator\nclass Foo(Bar):\n    __slots__ = ('a', 'b')",
    "while(true){i++;if(i>10)break;}",
    "matrix[i][j] = matrix[i-1][j-1] + 1;",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    "key1=value1\nkey2 = value 2\n\n[section]\nflag=on",
    "    return absl::InvalidArgumentError(absl::StrCat(path, \": bad\"));",
    "/* multi\n * line\n * comment */",
    "name: speechllm\non:\n  push:\n    branches: [ main ]",
    "cmake -S . -B build -G Ninja && ninja -C build",
    "-- SQL comment\nINSERT INTO t VALUES (1, 'it''s');",
    "$ ./speechllm-tokenize --tokenizer models/qwen2-audio-tiny < in.txt",
    "\"\"\"Docstring with a 'quote' and a \\\"double\\\" one.\"\"\"",
]
for _ in range(520):
    s = rng.choice(CODE)
    if rng.random() < 0.4:
        s = s + "\n" + rng.choice(CODE)
    if rng.random() < 0.2:
        s = s.replace("    ", "\t")
    add("code", s)

# ---------------------------------------------------------------- whitespace runs
SPACES = [" ", "  ", "   ", "    ", "\t", "\t\t", " \t", "\t ", "\n", "\n\n", "\n\n\n", " \n", "\n ",
          "  \n  ", "\r\n", "\r\n\r\n", "\r", " \r\n ", "\u00a0", "\u00a0\u00a0", "\u3000", "\u2003",
          "\u2009", "\u202f", "\u2028", "\u2029", "\u000b", "\u000c", " \u00a0 ", "\u205f", "\u1680"]
WORDS = ["a", "word", "It's", "x", "42", "。", "中文", "!", "(", "--", "😀", "end", "'s", "b.", "ok?"]
for _ in range(480):
    parts = []
    for _ in range(rng.randrange(1, 7)):
        parts.append(rng.choice(SPACES) * rng.randrange(1, 4))
        parts.append(rng.choice(WORDS))
    if rng.random() < 0.3:
        parts.append(rng.choice(SPACES) * rng.randrange(1, 5))
    add("whitespace", "".join(parts))
for s in SPACES:
    add("whitespace", s)
    add("whitespace", s * 7)

# ---------------------------------------------------------------- regex-engine edge characters
for edge in ["\u0085", "\u180e", "\ufeff", "\u2028", "\u00a0"]:
    for frame in ["a{0}b", "a{0}{0}{0}b", "end{0}{0}", "{0}{0} word", "x {0} y", "1{0}2", "{0}", "It's{0}it'S"]:
        add("engine_edges", frame.format(edge))
for s in ["it'\u017f", "IT'\u017f", "'\u017fx", "A\u212aB", "\u212a'S"]:
    add("engine_edges", s)

# ---------------------------------------------------------------- special-token strings
SPECIAL = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>",
           "<think>", "</think>", "<tool_call>", "<|box_start|>", "<|vision_pad|>", "<|en|>", "<|zh|>"]
NEAR = ["<|im_start|", "<|im_end", "|im_end|>", "<|IM_START|>", "< |im_end|>", "<||>", "<|>", "<|",
        "|>", "<<|im_end|>>", "<|im_end|><|im_end|>", "<|im_start|><|im_end|>", "<|audio|>"]
for _ in range(380):
    k = rng.randrange(4)
    if k == 0:
        role = rng.choice(["system", "user", "assistant"])
        s = f"<|im_start|>{role}\n{rng.choice(PROSE)}<|im_end|>\n"
    elif k == 1:
        s = "".join(rng.choice(SPECIAL + NEAR + [" ", "text", "\n", "中文", "it's", "1"]) for _ in range(rng.randrange(2, 9)))
    elif k == 2:
        s = f"Audio {rng.randrange(1, 5)}: <|audio_bos|><|AUDIO|><|audio_eos|>\n{rng.choice(PROSE)}"
    else:
        s = f"{rng.choice(PROSE)} {rng.choice(SPECIAL)}{rng.choice(WORDS)} {rng.choice(NEAR)}"
    add("special", s)

# ---------------------------------------------------------------- write
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "tokenizer", "corpus.txt")
os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
with open(out, "w", encoding="utf-8", newline="\n") as f:
    for _, text in lines:
        f.write(esc(text) + "\n")
counts = {}
for section, _ in lines:
    counts[section] = counts.get(section, 0) + 1
print(f"wrote {len(lines)} lines to {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
