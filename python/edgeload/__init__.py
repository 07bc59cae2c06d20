"""edgeload: the fixed-arena inference runtime, from Python (ctypes over libedgeload.so.0).

plan(path, ...)           the memory plan of a model (headers only, no weight read)
Model(path, ...)          open, plan, reserve one arena, load; then
  .generate(...)          decoder models: text, streaming tokens through a callback
  .embed(...), .classify  encoder models (BERT): vectors, label probabilities
  .tokenize(text)         token ids with the model's tokenizer
EdgeloadError             every failure: .status (name), .code (CLI exit code), message
"""
from ._api import EdgeloadError, Generation, Model, library_path, plan, version

__all__ = ["EdgeloadError", "Generation", "Model", "library_path", "plan", "version"]
__version__ = "0.1.0"
