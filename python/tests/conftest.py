"""Fixtures for the binding's tests: the repository's bundled model and BERT fixtures.
The library comes from $EDGELOAD_PREFIX / $EDGELOAD_LIBRARY (scripts/test_python.sh sets
the staged install) or the system."""
import json
import os

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STORIES = os.path.join(REPO, "assets", "stories260K", "stories260K.bin")
FIXTURES = os.path.join(REPO, "tests", "fixtures")


def load_json(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def stories():
    return STORIES


@pytest.fixture(scope="session")
def greedy_ref():
    """Greedy ids of stories260K from an independent NumPy llama2.c (scripts/ref_llama2c.py)."""
    return load_json(FIXTURES, "stories260K_greedy.json")


def bert_fixture(name):
    """(folder, reference.json) of a transformers-made BERT fixture; the inputs as rows."""
    ref = load_json(FIXTURES, name, "reference.json")
    seq = ref["seq"]
    ids = [ref["input_ids"][i * seq:i * seq + n] for i, n in enumerate(ref["lengths"])]
    types = [ref["token_type_ids"][i * seq:i * seq + n] for i, n in enumerate(ref["lengths"])]
    return os.path.join(FIXTURES, name), ref, ids, types
