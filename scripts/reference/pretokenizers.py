#!/usr/bin/env python3
"""Reference pre-tokenizer splits from the `regex` module, applying each model family's
regular expressions in sequence the way llama.cpp's unicode_regex_split does (each expression
splits the pieces the previous one made; text between matches is kept as pieces).

    python3 scripts/reference/pretokenizers.py > Tests/TailorTokenizersTests/Fixtures/pretokenizers.json
"""
import json, random, sys
import regex

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")
PATTERNS = {
    "smollm": [r"\p{N}", GPT2],
    "gpt2": [GPT2],
    "llama-bpe": [LLAMA3],
    "qwen2": [QWEN2],
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
}

def split(text, exprs):
    pieces = [text] if text else []
    for e in exprs:
        r = regex.compile(e)
        out = []
        for p in pieces:
            at = 0
            for m in r.finditer(p):
                if m.start() > at:
                    out.append(p[at:m.start()])
                if m.end() > m.start():
                    out.append(m.group())
                at = m.end()
            if at < len(p):
                out.append(p[at:])
        pieces = out
    return pieces

HARD = [
    "Hello world", " Hello  world", "  two leading spaces", "trailing spaces   ", "line1\nline2\n\n\nline5",
    "tabs\tand\r\nCRLF", "numbers 1234567890 3.14159 1,000,000", "Ünïcödé: naïve café, Zürich",
    "日本語のテキスト、中文文本，한국어", "emoji 🎉🚀👩‍👩‍👧‍👦 flags 🇫🇷", "code: for (int i = 0; i < n; ++i) { x += a[i]; }",
    "    def f(x):\n        return x ** 2\n", "don't can't I'M WE'VE they'LL it'S", "$100 + 5% <= 7 ^ 2 ~ x | y",
    "a  \n  b \n\n c", "x\u00a0y\u2003z", "١٢٣ ٤٥٦ ⅷ ½", "!!!???...", "   ", "\n\n", "'", "'s'", "a'sb",
]

def random_strings(n, seed=7):
    rnd = random.Random(seed)
    alphabet = list("abcXYZ019 \n\t\r'.,!?-_()[]{}$+<=>^~|") + ["é", "ß", "日", "本", "한", "🎉", "\u00a0", "\u2003", "٣", "½", "’", "\u200d", "Ⅷ"]
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 40))) for _ in range(n)]

cases = HARD + random_strings(300)
out = {name: [{"text": t, "pieces": split(t, exprs)} for t in cases] for name, exprs in PATTERNS.items()}
json.dump(out, sys.stdout, ensure_ascii=False)
