"""The Python binding against the installed libedgeload.so.0: plan, generate (streaming),
embed and classify, each against a reference nobody here wrote (transformers for BERT, an
independent NumPy llama2.c for stories260K), and errors."""
import math

import pytest

import edgeload
from conftest import STORIES, bert_fixture


def close(a, b, tol):
    return all(abs(x - y) <= tol * max(1.0, abs(y)) for x, y in zip(a, b)) and len(a) == len(b)


def test_library_is_the_installed_one():
    assert "libedgeload.so.0" in edgeload.library_path()


def test_plan_counts_and_nofit():
    p = edgeload.plan(STORIES, ctx=128)
    assert p["family"] == "llama" and p["format"] == "llama2c" and p["ctx"] == 128
    assert p["total_bytes"] == sum(p["regions"].values())
    assert p["read_bytes"] > 1000000  # 260K fp32 parameters are read
    full = edgeload.plan(STORIES)  # ctx 0: the model's 512
    assert full["ctx"] == 512 and full["regions"]["kv"] == 4 * p["regions"]["kv"]
    with pytest.raises(edgeload.EdgeloadError) as e:
        edgeload.plan(STORIES, arena=64 * 1024)
    assert e.value.status == "EL_E_NOFIT" and e.value.code == 3 and "needs" in str(e.value)


def test_generate_matches_reference_and_streams(greedy_ref):
    seen = []
    with edgeload.Model(STORIES, ctx=256, threads=2) as m:
        assert m.tokenize(greedy_ref["prompt"]) == greedy_ref["prompt_ids"]
        out = m.generate(greedy_ref["prompt"], 40, on_token=lambda i, s: seen.append((i, s)))
        want = greedy_ref["generated_ids"][:40]
        assert out.ids == want
        assert [i for i, _ in seen] == want  # the callback saw each token, in order
        assert "".join(s for _, s in seen) == out.text
        assert out.stats["generated_tokens"] == 40 and out.stats["prompt_tokens"] == 5
        # Returning False stops at that token.
        count = [0]

        def stop_at_4(i, s):
            count[0] += 1
            return count[0] < 4
        assert m.generate(greedy_ref["prompt"], 40, on_token=stop_at_4).ids == want[:4]
        # An exception in the callback stops generation and reaches the caller.
        def boom(i, s):
            raise KeyError("from the callback")
        with pytest.raises(KeyError):
            m.generate("Once", 8, on_token=boom)
        # Sampling is reproducible by seed.
        a = m.generate("Once", 16, temperature=0.8, top_p=0.9, seed=7)
        b = m.generate("Once", 16, temperature=0.8, top_p=0.9, seed=7)
        assert a.ids == b.ids


def test_generate_too_long_is_an_error():
    with edgeload.Model(STORIES, ctx=16) as m:
        with pytest.raises(edgeload.EdgeloadError) as e:
            m.generate("Once upon a time", 100)
        # The CLI's exit 6 ("request longer than the context"), naming the --ctx that fits.
        assert e.value.status == "EL_E_TOOLONG" and e.value.code == 6 and "--ctx" in str(e.value)


def test_embed_matches_transformers():
    path, ref, ids, types = bert_fixture("hf_bert_base")
    with edgeload.Model(path, ctx=ref["seq"], batch=ref["batch"]) as m:
        vecs = m.embed(ids=ids, type_ids=types, pooling="mean", normalize=True)
        assert len(vecs) == ref["batch"]
        for got, want in zip(vecs, ref["mean_norm"]):
            assert close(got, want, 1e-4)
            assert abs(math.sqrt(sum(x * x for x in got)) - 1.0) < 1e-5
        cls = m.embed(ids=ids, type_ids=types, pooling="cls")
        for got, want in zip(cls, ref["cls"]):
            assert close(got, want, 1e-4)
        with pytest.raises(edgeload.EdgeloadError):
            m.generate("x", 1)  # an encoder has no generate


def test_classify_matches_transformers():
    path, ref, ids, types = bert_fixture("hf_bert_cls")
    with edgeload.Model(path, ctx=ref["seq"], batch=ref["batch"]) as m:
        assert m.labels() == ref["labels"]
        probs, logits = m.classify(ids=ids, type_ids=types, logits=True)
        for got, want in zip(logits, ref["logits"]):
            assert close(got, want, 1e-4)
        for got, want in zip(probs, ref["probs"]):
            assert list(got) == ref["labels"]
            assert close(list(got.values()), want, 1e-4)


def test_open_errors():
    with pytest.raises(edgeload.EdgeloadError) as e:
        edgeload.Model("/nonexistent/model.bin")
    assert e.value.code in (2, 4) and "/nonexistent/model.bin" in str(e.value)
    with pytest.raises(edgeload.EdgeloadError) as e:
        edgeload.plan(STORIES, dtype="f12")
    assert e.value.status == "EL_E_USAGE"


def test_device_choice():
    """auto runs where it can and says why; cuda without a usable GPU is EL_E_NODEV (5)."""
    with edgeload.Model(STORIES, ctx=64, device="auto") as m:
        assert m.device in ("cpu", "cuda") and m.device_why
        # CUDA builds: the installed library finds its CUDA module (lib/edgeload/) itself
        assert "was not found" not in m.device_why, m.device_why
        assert len(m.generate("Once", 4).ids) == 4
    if m.device == "cpu":
        with pytest.raises(edgeload.EdgeloadError) as e:
            edgeload.Model(STORIES, ctx=64, device="cuda")
        assert e.value.code == 5
