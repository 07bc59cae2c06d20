#!/usr/bin/env python3
"""fixtures_pack_gguf.py - the SentencePiece tokenizer.model that tests/test_pack_gguf.c packs
into GGUF metadata, and what the `sentencepiece` library says about it (the reference).

    /work/venv-fixtures/bin/python scripts/fixtures_pack_gguf.py

Writes tests/fixtures/pack_gguf/tokenizer.model: a 512-piece BPE with byte fallback (unk 0,
bos 1, eos 2, a user-defined <tool>; identity normalization and whitespace kept, as Llama 2's
and Gemma's, since llama.cpp's tokenizer does no normalizing), trained on scripts/fixtures_spm.corpus() (the corpus of the SentencePiece
tokenizer fixtures; 512 pieces = the rows of tests/fixtures/hf_llama_gqa), and
tokenizer_model.json: every piece with sentencepiece's id_to_piece, get_score and its type
(1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte, as GGUF numbers them),
normalizer_spec.add_dummy_prefix, and the ids sentencepiece's encode() gives for a few texts
(no BOS). The test checks the GGUF metadata against the first and edgeload's GGUF tokenizer
against the second.
"""
import json
import os
import sys
import tempfile

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "pack_gguf")
TEXTS = ["hello world", "The quick brown fox, 1234 jumps!", "  two  spaces\nand a line",
         "caf\u00e9 na\u00efve \u2603 \U0001f600"]


def piece_type(sp, i):
    if sp.is_unknown(i):
        return 2
    if sp.is_control(i):
        return 3
    if sp.is_unused(i):
        return 5
    if sp.is_byte(i):
        return 6
    proto = pb.ModelProto()
    proto.ParseFromString(sp.serialized_model_proto())
    return 4 if proto.pieces[i].type == pb.ModelProto.SentencePiece.USER_DEFINED else 1


def main():
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import fixtures_spm
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write(fixtures_spm.corpus())
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=os.path.join(tmp, "tokenizer"), model_type="bpe",
            vocab_size=512, byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            user_defined_symbols=["<tool>"], normalization_rule_name="identity",
            remove_extra_whitespaces=False, num_threads=1, minloglevel=2)
        with open(os.path.join(tmp, "tokenizer.model"), "rb") as f:
            model = f.read()
    with open(os.path.join(OUT, "tokenizer.model"), "wb") as f:
        f.write(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    proto = pb.ModelProto()
    proto.ParseFromString(model)
    doc = {
        "pieces": [sp.id_to_piece(i) for i in range(sp.get_piece_size())],
        "scores": [sp.get_score(i) for i in range(sp.get_piece_size())],
        "types": [piece_type(sp, i) for i in range(sp.get_piece_size())],
        "add_dummy_prefix": proto.normalizer_spec.add_dummy_prefix,
        "cases": [{"text": t, "ids": sp.encode(t)} for t in TEXTS],
    }
    with open(os.path.join(OUT, "tokenizer_model.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"{OUT}: tokenizer.model ({len(model)} bytes), {sp.get_piece_size()} pieces")


if __name__ == "__main__":
    main()
