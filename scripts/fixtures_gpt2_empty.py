#!/usr/bin/env python3
"""fixtures_gpt2_empty.py - what transformers generates from an empty prompt (developer-run).

    .venv-fixtures/bin/python scripts/fixtures_gpt2_empty.py

GPT2LMHeadModel.generate() called with no input ids starts from bos_token_id
(<|endoftext|>, 50256). This records 8 greedy ids from that start for the committed fixture
tests/fixtures/hf_gpt2_vocab50257 into its empty_prompt.json; tests/test_gpt2_cli.c checks
that `edgeload generate` with "" (and without -p) prints the same.

The attention mask is given explicitly (all ones): GPT-2 has no pad token, and generate()
then takes <|endoftext|> as padding too and masks the only input token out of attention
(its output then depends on that artefact, not on the model). Unmasked, the first id is the
argmax of the plain forward pass on [50256], which this script also asserts.
"""
import json
import os

import torch
import transformers
from transformers import GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "hf_gpt2_vocab50257")

model = GPT2LMHeadModel.from_pretrained(FIX, torch_dtype=torch.float32).eval()
bos = model.generation_config.bos_token_id
start = torch.tensor([[bos]])
with torch.no_grad():
    out = model.generate(start, attention_mask=torch.ones_like(start), do_sample=False,
                         max_new_tokens=8, min_new_tokens=8,
                         pad_token_id=model.config.eos_token_id)
    first = int(torch.argmax(model(start).logits[0, -1]))
ids = [int(x) for x in out[0]]
assert ids[1] == first, (ids, first)
assert ids[0] == model.config.bos_token_id == 50256, ids
ref = {"transformers": transformers.__version__, "torch": torch.__version__,
       "start_id": ids[0], "greedy_ids": ids[1:],
       "note": "generate() from bos_token_id with an all-ones attention mask: 8 greedy ids"}
with open(os.path.join(FIX, "empty_prompt.json"), "w") as f:
    json.dump(ref, f, indent=1)
    f.write("\n")
print(ref)
