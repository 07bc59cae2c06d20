#!/usr/bin/env python3
"""ref_llama2c.py - an independent NumPy implementation of llama2.c's model and tokenizer,
used to make the fixtures edgeload's Llama tests compare against. It shares no code with
edgeload: it follows the llama2.c algorithm (run.c) directly, token by token, in float32.

Setup (once, from the repository root):
    python3 -m venv .venv-ref && .venv-ref/bin/pip install numpy
Run:
    .venv-ref/bin/python scripts/ref_llama2c.py

Writes:
  tests/fixtures/stories260K_greedy.json   the bundled stories260K: prompt "Once upon a time"
      encoded the llama2.c way (BOS + ids), 64 greedy ids, the decoded text, and the logits
      of the first generated position;
  tests/fixtures/llama2c_tiny_untied.bin   a tiny random llama2.c checkpoint with an untied
      classifier (negative vocab_size), GQA and sizes that are not multiples of 8;
  tests/fixtures/llama2c_tiny_untied.json  its header, a token sequence, the logits at every
      position of that sequence and 16 greedy ids after it.
"""
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "assets", "stories260K")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
F32 = np.float32


# ---- checkpoint -------------------------------------------------------------------------

class Checkpoint:
    """llama2.c legacy format: 7 int32 then float32 arrays stacked over layers."""

    def __init__(self, path):
        raw = open(path, "rb").read()
        (self.dim, self.hidden, self.n_layers, self.n_heads, self.n_kv_heads, vocab,
         self.seq_len) = struct.unpack_from("<7i", raw, 0)
        self.shared = vocab > 0
        self.vocab = abs(vocab)
        self.head_size = self.dim // self.n_heads
        self.kv_dim = self.dim * self.n_kv_heads // self.n_heads
        data = np.frombuffer(raw, dtype="<f4", offset=28)
        pos = 0

        def take(*shape):
            nonlocal pos
            n = int(np.prod(shape))
            a = data[pos:pos + n].reshape(shape).astype(F32)
            pos += n
            return a

        L, d, h, kvd = self.n_layers, self.dim, self.hidden, self.kv_dim
        self.tok_emb = take(self.vocab, d)
        self.rms_att = take(L, d)
        self.wq = take(L, d, d)          # [layer, out, in]
        self.wk = take(L, kvd, d)
        self.wv = take(L, kvd, d)
        self.wo = take(L, d, d)
        self.rms_ffn = take(L, d)
        self.w1 = take(L, h, d)
        self.w2 = take(L, d, h)
        self.w3 = take(L, h, d)
        self.rms_final = take(d)
        take(self.seq_len, self.head_size // 2)  # freq_cis_real (unused, as in run.c)
        take(self.seq_len, self.head_size // 2)  # freq_cis_imag
        self.wcls = self.tok_emb if self.shared else take(self.vocab, d)
        assert pos == data.size, "checkpoint size does not match its header"


def rmsnorm(x, w):
    ss = F32(np.sum(x * x, dtype=F32) / F32(x.size)) + F32(1e-5)
    return w * (x * F32(1.0 / np.sqrt(ss)))


def rope(vec, pos, head_size, n):
    """run.c's rotation: pairs (i, i+1), frequency from the position inside the head."""
    out = vec.copy()
    for i in range(0, n, 2):
        hd = i % head_size
        freq = F32(1.0) / np.power(F32(10000.0), F32(hd) / F32(head_size))
        val = F32(pos) * freq
        c, s = np.cos(val), np.sin(val)
        v0, v1 = vec[i], vec[i + 1]
        out[i] = v0 * c - v1 * s
        out[i + 1] = v0 * s + v1 * c
    return out


class Model:
    def __init__(self, ck):
        self.ck = ck
        self.kcache = np.zeros((ck.n_layers, ck.seq_len, ck.kv_dim), F32)
        self.vcache = np.zeros((ck.n_layers, ck.seq_len, ck.kv_dim), F32)

    def forward(self, token, pos):
        ck = self.ck
        hs, kv_mul = ck.head_size, ck.n_heads // ck.n_kv_heads
        x = ck.tok_emb[token].copy()
        for l in range(ck.n_layers):
            xb = rmsnorm(x, ck.rms_att[l])
            q = ck.wq[l] @ xb
            k = ck.wk[l] @ xb
            v = ck.wv[l] @ xb
            q = rope(q, pos, hs, ck.dim)
            k = rope(k, pos, hs, ck.kv_dim)
            self.kcache[l, pos] = k
            self.vcache[l, pos] = v
            att_out = np.zeros(ck.dim, F32)
            for h in range(ck.n_heads):
                qh = q[h * hs:(h + 1) * hs]
                kh = (h // kv_mul) * hs
                keys = self.kcache[l, :pos + 1, kh:kh + hs]
                scores = (keys @ qh) / F32(np.sqrt(F32(hs)))
                scores = np.exp(scores - scores.max())
                scores = scores / scores.sum(dtype=F32)
                vals = self.vcache[l, :pos + 1, kh:kh + hs]
                att_out[h * hs:(h + 1) * hs] = scores @ vals
            x = x + ck.wo[l] @ att_out
            xb = rmsnorm(x, ck.rms_ffn[l])
            h1 = ck.w1[l] @ xb
            h3 = ck.w3[l] @ xb
            hb = h1 * (F32(1.0) / (F32(1.0) + np.exp(-h1))) * h3
            x = x + ck.w2[l] @ hb
        x = rmsnorm(x, ck.rms_final)
        return (ck.wcls @ x).astype(F32)


# ---- tokenizer --------------------------------------------------------------------------

class Tokenizer:
    def __init__(self, path, vocab_size):
        raw = open(path, "rb").read()
        (self.max_len,) = struct.unpack_from("<i", raw, 0)
        off = 4
        self.pieces, self.scores = [], []
        for _ in range(vocab_size):
            score, n = struct.unpack_from("<fi", raw, off)
            off += 8
            self.pieces.append(raw[off:off + n])
            self.scores.append(score)
            off += n
        assert off == len(raw), "tokenizer holds more tokens than the model's vocabulary"
        self.index = {}
        for i, p in enumerate(self.pieces):
            self.index.setdefault(p, i)

    def encode(self, text, bos=True):
        """run.c's encode: BOS, dummy prefix, characters or byte fallback, greedy merges."""
        tokens = [1] if bos else []
        if text:
            tokens.append(self.index[b" "])
        for ch in text:
            b = ch.encode("utf-8")
            if b in self.index:
                tokens.append(self.index[b])
            else:
                tokens.extend(x + 3 for x in b)
        while True:
            best, best_id, best_i = -1e10, -1, -1
            for i in range(len(tokens) - 1):
                merged = self.pieces[tokens[i]] + self.pieces[tokens[i + 1]]
                j = self.index.get(merged)
                if j is not None and self.scores[j] > best:
                    best, best_id, best_i = self.scores[j], j, i
            if best_id < 0:
                break
            tokens[best_i:best_i + 2] = [best_id]
        return tokens

    def decode(self, prev, token):
        p = self.pieces[token]
        if prev == 1 and p.startswith(b" "):
            p = p[1:]
        if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
            p = bytes([int(p[3:5], 16)])
        return p


def floats(a):
    return [float(v) for v in np.asarray(a, dtype=F32)]


# ---- fixtures ---------------------------------------------------------------------------

def stories_fixture():
    ck = Checkpoint(os.path.join(ASSETS, "stories260K.bin"))
    tok = Tokenizer(os.path.join(ASSETS, "tok512.bin"), ck.vocab)
    prompt = "Once upon a time"
    ids = tok.encode(prompt)
    model = Model(ck)
    steps = 64
    generated, first_logits = [], None
    token = ids[0]
    for pos in range(len(ids) - 1 + steps):
        logits = model.forward(token, pos)
        if pos < len(ids) - 1:
            token = ids[pos + 1]
            continue
        if first_logits is None:
            first_logits = logits
        nxt = int(np.argmax(logits))
        if nxt in (1, 2):  # BOS separates stories in llama2.c's data; EOS ends text
            break
        generated.append(nxt)
        token = nxt
    text = b""
    seq = ids + generated
    for a, b in zip(seq[:-1], seq[1:]):
        text += tok.decode(a, b)
    gen_text = b"".join(tok.decode(a, b) for a, b in zip(seq[len(ids) - 1:-1], generated))
    text = text.decode("utf-8")
    want = "Once upon a time, there was a little girl named Lily."
    if not text.startswith(want):
        sys.exit("sanity check failed: the text does not begin %r: %r" % (want, text))
    # Encodings for the tokenizer test: ids for strings with characters missing from the
    # 512-token vocabulary (byte fallback), newlines, spaces and the empty string.
    samples = ["", " ", "Hello world", "  leading and trailing  ", "line one\nline two",
               "日本", "a😀b", "Tom's café", "x" * 40, "xlll", "zooo", "-pppp", "llama"]
    encodings = [{"text": s, "ids": tok.encode(s)} for s in samples]
    out = {
        "source": "scripts/ref_llama2c.py (independent NumPy implementation of llama2.c)",
        "model": "assets/stories260K/stories260K.bin",
        "tokenizer": "assets/stories260K/tok512.bin",
        "prompt": prompt,
        "prompt_ids": ids,
        "generated_ids": generated,
        "text": text,
        "generated_text": gen_text.decode("utf-8", "replace"),
        "first_logits": floats(first_logits),
        "encodings": encodings,
    }
    with open(os.path.join(FIXTURES, "stories260K_greedy.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print("stories260K:", text)


def tiny_fixture():
    rng = np.random.default_rng(20240601)
    dim, hidden, layers, heads, kv_heads, vocab, seq = 32, 44, 2, 4, 2, 67, 32
    hs, kvd = dim // heads, dim * kv_heads // heads
    arrays = [
        rng.normal(0, 1.0, (vocab, dim)),              # token embedding
        1.0 + rng.normal(0, 0.1, (layers, dim)),       # rms_att
        rng.normal(0, 0.25, (layers, dim, dim)),       # wq
        rng.normal(0, 0.25, (layers, kvd, dim)),       # wk
        rng.normal(0, 0.25, (layers, kvd, dim)),       # wv
        rng.normal(0, 0.25, (layers, dim, dim)),       # wo
        1.0 + rng.normal(0, 0.1, (layers, dim)),       # rms_ffn
        rng.normal(0, 0.25, (layers, hidden, dim)),    # w1
        rng.normal(0, 0.25, (layers, dim, hidden)),    # w2
        rng.normal(0, 0.25, (layers, hidden, dim)),    # w3
        1.0 + rng.normal(0, 0.1, (dim,)),              # rms_final
    ]
    freqs = 1.0 / 10000.0 ** (np.arange(0, hs, 2) / hs)
    ang = np.outer(np.arange(seq), freqs)
    arrays += [np.cos(ang), np.sin(ang)]               # freq_cis (present, unused)
    arrays.append(rng.normal(0, 0.5, (vocab, dim)))    # wcls (untied)
    path = os.path.join(FIXTURES, "llama2c_tiny_untied.bin")
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", dim, hidden, layers, heads, kv_heads, -vocab, seq))
        for a in arrays:
            f.write(np.asarray(a, dtype="<f4").tobytes())
    ck = Checkpoint(path)
    assert not ck.shared
    model = Model(ck)
    ids = [1, 5, 17, 33, 66, 2, 40, 12, 9, 0, 61]
    logits = [floats(model.forward(t, p)) for p, t in enumerate(ids)]
    greedy, token = [], int(np.argmax(logits[-1]))
    for pos in range(len(ids), len(ids) + 16):
        greedy.append(token)
        token = int(np.argmax(model.forward(token, pos)))
    out = {
        "source": "scripts/ref_llama2c.py (independent NumPy implementation of llama2.c)",
        "header": {"dim": dim, "hidden_dim": hidden, "n_layers": layers, "n_heads": heads,
                   "n_kv_heads": kv_heads, "vocab_size": -vocab, "seq_len": seq},
        "ids": ids,
        "logits": logits,
        "greedy_ids": greedy,
    }
    with open(os.path.join(FIXTURES, "llama2c_tiny_untied.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("tiny untied: greedy", greedy)


if __name__ == "__main__":
    os.makedirs(FIXTURES, exist_ok=True)
    stories_fixture()
    tiny_fixture()
