#!/usr/bin/env python3
"""fixtures_gpt2.py - builds the GPT-2 reference fixtures in tests/fixtures/hf_gpt2_* (developer-run).

    /work/main/.venv-fixtures/bin/python scripts/fixtures_gpt2.py [VARIANT...]
(or any venv with torch, transformers 5.x, safetensors, numpy; scripts/fixtures_venv.sh makes one).
CI never runs this: its outputs are committed. Everything is seeded; the library versions used are
recorded in each reference.json.

Each variant is a tiny random GPT2LMHeadModel (transformers, eager attention) saved as safetensors +
config.json, with reference.json (config facts, prompt ids, 16 greedy ids, margins) and logits
recorded by transformers. Variants:
  vocab50257  the real GPT-2 vocabulary size (n_embd 8, 2 layers), weights stored as float16 to keep
              the file small; prompt = the real GPT-2 ids of "The future of AI is" (checked with
              transformers' GPT-2 tokenizer from ../shared/models/gpt2-tokenizer), greedy ids and the
              decoded text; logits of the last prompt position only (transformers in float32 on the
              f16 weights). The tokenizer files are NOT copied (1.5 MB): tests link them in from
              ../shared/models and skip without it.
  small       vocab 512, n_embd 32, 4 heads, 2 layers, n_inner default (4 * n_embd), float32, saved
              from GPT2LMHeadModel (tensor names with the "transformer." prefix); logits at every
              prompt position, for f32 weights and for weights rounded to f16.
  inner_bare  vocab 384, n_embd 24, 3 heads, 3 layers, n_inner 40 (not 4 * n_embd),
              layer_norm_epsilon 1e-3, float32, saved from GPT2Model: the layout of the original
              openai checkpoints (no prefix, no lm_head: tied to wte).
"""
import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
SHARED_TOK = os.path.join(ROOT, "..", "shared", "models", "gpt2-tokenizer")

PROMPT = "The future of AI is"
N_GREEDY = 16
MIN_MARGIN = 0.02  # accepted top-1 minus top-2 logit gap at every greedy step

VARIANTS = [
    dict(name="vocab50257", vocab_size=50257, n_embd=8, n_head=2, n_layer=2, n_positions=32,
         n_inner=None, layer_norm_epsilon=1e-5, store="float16", save="lmhead"),
    dict(name="small", vocab_size=512, n_embd=32, n_head=4, n_layer=2, n_positions=64,
         n_inner=None, layer_norm_epsilon=1e-5, store="float32", save="lmhead"),
    dict(name="inner_bare", vocab_size=384, n_embd=24, n_head=3, n_layer=3, n_positions=48,
         n_inner=40, layer_norm_epsilon=1e-3, store="float32", save="bare"),
]


def versions():
    import tokenizers
    import torch
    import transformers
    return {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
            "torch": torch.__version__}


def gpt2_tokenizer():
    """transformers' GPT-2 tokenizer from the real vocab.json / merges.txt (shared folder)."""
    from transformers import GPT2TokenizerFast
    d = tempfile.mkdtemp()
    shutil.copy(os.path.join(SHARED_TOK, "encoder.json"), os.path.join(d, "vocab.json"))
    shutil.copy(os.path.join(SHARED_TOK, "vocab.bpe"), os.path.join(d, "merges.txt"))
    tok = GPT2TokenizerFast.from_pretrained(d)
    shutil.rmtree(d)
    return tok


def f32_bytes(t):
    import numpy as np
    return np.ascontiguousarray(t.detach().to("cpu").float().numpy(), dtype="<f4").tobytes()


def build_model(v, seed):
    """Random weights large enough that the logits spread (GPT-2's init, std 0.02, gives nearly
    flat logits whose argmax any rounding could flip)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    eos = v["vocab_size"] - 1
    cfg = GPT2Config(vocab_size=v["vocab_size"], n_embd=v["n_embd"], n_head=v["n_head"],
                     n_layer=v["n_layer"], n_positions=v["n_positions"], n_inner=v["n_inner"],
                     layer_norm_epsilon=v["layer_norm_epsilon"], activation_function="gelu_new",
                     bos_token_id=eos, eos_token_id=eos, attn_implementation="eager")
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg).float().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                if name.endswith("weight"):
                    p.copy_(0.5 + torch.rand(p.shape, generator=g))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("wte.weight"):
                p.copy_(0.25 * torch.randn(p.shape, generator=g))
            elif name.endswith("wpe.weight"):
                p.copy_(0.25 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:  # Conv1D weights, stored [in, out]
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[0] ** 0.5))
    if v["store"] == "float16":  # the weights the file will hold, back in float32
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    return model


def greedy(model, prompt_ids):
    """Argmax decoding with a full forward pass per step (no KV cache)."""
    import torch
    ids = list(prompt_ids)
    margin = float("inf")
    with torch.no_grad():
        for _ in range(N_GREEDY):
            logits = model(torch.tensor([ids])).logits[0, -1].double()
            top = torch.topk(logits, 2).values
            margin = min(margin, float(top[0] - top[1]))
            ids.append(int(torch.argmax(logits)))
    return ids[len(prompt_ids):], margin


def round_to_f16(model):
    import copy
    import torch
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.half().float())
    return m


def save(model, v, out):
    """Writes model.safetensors + config.json as transformers saves them (GPT2LMHeadModel:
    "transformer."-prefixed names; GPT2Model: bare names, the openai layout)."""
    import torch
    from transformers import GPT2Model
    dtype = torch.float16 if v["store"] == "float16" else torch.float32
    if v["save"] == "lmhead":
        model.to(dtype).save_pretrained(out, safe_serialization=True)
        model.float()
    else:
        bare = GPT2Model(model.config)
        bare.load_state_dict(model.transformer.state_dict())
        bare.to(dtype).save_pretrained(out, safe_serialization=True)


def make(v, tok):
    import torch
    from safetensors import safe_open
    from transformers import GPT2LMHeadModel

    name = "hf_gpt2_" + v["name"]
    out = os.path.join(FIX, name)
    os.makedirs(out, exist_ok=True)
    for fname in os.listdir(out):
        os.remove(os.path.join(out, fname))
    eos = v["vocab_size"] - 1
    if v["vocab_size"] == 50257:
        prompt_ids = tok(PROMPT)["input_ids"]
        assert prompt_ids == [464, 2003, 286, 9552, 318], prompt_ids
        assert tok.eos_token_id == 50256
    else:  # no tokenizer at this size: fixed ids inside the vocabulary, 8 positions
        prompt_ids = [(464 * (i + 1) + 17 * i) % (v["vocab_size"] - 1) for i in range(8)]

    for seed in range(2000, 2200):
        model = build_model(v, seed)
        ids, margin = greedy(model, prompt_ids)
        ok = margin >= MIN_MARGIN and eos not in ids and len(set(ids)) >= 6
        if ok and v["store"] == "float32":
            ids16, margin16 = greedy(round_to_f16(model), prompt_ids)
            ok = margin16 >= MIN_MARGIN and eos not in ids16
        if ok:
            break
    else:
        raise SystemExit("%s: no seed gives unambiguous greedy ids" % name)

    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    with torch.no_grad():
        gen = model.generate(torch.tensor([prompt_ids]), do_sample=False,
                             max_new_tokens=N_GREEDY, min_new_tokens=0)
    assert [int(x) for x in gen[0, len(prompt_ids):]] == ids, name

    save(model, v, out)
    with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
        keys = sorted(f.keys())
    prefixed = v["save"] == "lmhead"
    assert all(k.startswith("transformer.") == prefixed for k in keys), keys[:4]
    assert not any("lm_head" in k for k in keys)

    # The files on disk are the fixture: reload (GPT2LMHeadModel maps the bare names too) in
    # float32 and recompute.
    disk = GPT2LMHeadModel.from_pretrained(out, dtype=torch.float32,
                                           attn_implementation="eager").eval()
    x = torch.tensor([prompt_ids])
    with torch.no_grad():
        logits = disk(x).logits[0].float()
        logits64 = disk.double()(x).logits[0]
        disk.float()
        logits16 = round_to_f16(disk)(x).logits[0].float()
    assert greedy(disk, prompt_ids)[0] == ids, name

    ref = {
        "variant": v["name"], "versions": versions(), "seed": seed,
        "stored_dtype": v["store"], "saved_from": "GPT2LMHeadModel" if prefixed else "GPT2Model",
        "tensor_prefix": "transformer." if prefixed else "",
        "vocab_size": v["vocab_size"], "n_embd": v["n_embd"], "n_head": v["n_head"],
        "n_layer": v["n_layer"], "n_positions": v["n_positions"],
        "n_inner": v["n_inner"] or 4 * v["n_embd"],
        "layer_norm_epsilon": v["layer_norm_epsilon"], "eos_token_id": eos,
        "prompt": PROMPT if v["vocab_size"] == 50257 else None,
        "prompt_ids": list(prompt_ids), "n_prompt": len(prompt_ids),
        "greedy_ids": ids, "greedy_min_margin": margin,
        "logits_max_abs_diff_f32_vs_f64": float((logits.double() - logits64).abs().max()),
    }
    if v["vocab_size"] == 50257:
        with open(os.path.join(out, "logits_last.bin"), "wb") as f:
            f.write(f32_bytes(logits[-1]))
        ref["logits_last"] = {
            "file": "logits_last.bin",
            "layout": "float32 little-endian [vocab_size]: the logits after all prompt_ids, "
                      "transformers in float32 on the stored float16 weights"}
        ref["text"] = tok.decode(list(prompt_ids) + ids)
        ref["generated_text"] = tok.decode(ids)
    else:
        with open(os.path.join(out, "logits_f32.bin"), "wb") as f:
            f.write(f32_bytes(logits))
        with open(os.path.join(out, "logits_f16w.bin"), "wb") as f:
            f.write(f32_bytes(logits16))
        ids16, margin16 = greedy(round_to_f16(disk), prompt_ids)
        ref["logits_f32"] = {
            "file": "logits_f32.bin",
            "layout": "float32 little-endian [n_prompt][vocab_size]: row i = the logits after "
                      "prompt_ids[0..i]"}
        ref["logits_f16w"] = {
            "file": "logits_f16w.bin",
            "layout": "as logits_f32, with every weight rounded to float16 first (the reference "
                      "for --dtype f16)",
            "max_abs_diff_vs_f32": float((logits16 - logits).abs().max())}
        ref["greedy_ids_f16w"] = ids16
        ref["greedy_min_margin_f16w"] = margin16
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print("%s: seed %d, %d bytes, margin %.4f, ids %s" % (name, seed, size, margin, ids))


def main():
    tok = gpt2_tokenizer()
    only = sys.argv[1:]
    for v in VARIANTS:
        if not only or v["name"] in only:
            make(v, tok)
    total = sum(os.path.getsize(os.path.join(FIX, d, f)) for d in os.listdir(FIX)
                if d.startswith("hf_gpt2_") for f in os.listdir(os.path.join(FIX, d)))
    print("hf_gpt2 fixtures: %d bytes in all" % total)


if __name__ == "__main__":
    main()
