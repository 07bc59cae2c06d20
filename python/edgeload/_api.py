"""ctypes mirror of include/edgeload.h (the structs this binding passes) and the Python API.

The struct layouts below must match the C header field for field; tests/test_layout.py
compiles a probe against the installed header and compares every size and offset.
Ownership follows the C API: a Model owns its model, arena and session/encoder and frees
them in reverse order on close(); nothing returned to Python points into the arena.
"""
import ctypes
import ctypes.util
import glob
import os
import platform

# ---- finding and binding the library ------------------------------------------------

_SONAME = "libedgeload.so.0"


def _candidates():
    lib = os.environ.get("EDGELOAD_LIBRARY")
    if lib:
        yield lib
        return  # an explicit path is the only candidate: fail loudly if it is wrong
    prefix = os.environ.get("EDGELOAD_PREFIX")
    if prefix:
        for sub in ("lib", "lib64", "lib/%s-linux-gnu" % platform.machine()):
            yield os.path.join(prefix, sub, _SONAME)
        for p in sorted(glob.glob(os.path.join(prefix, "lib", "*", _SONAME))):
            yield p
    yield _SONAME  # the system loader: ld.so.conf, LD_LIBRARY_PATH
    found = ctypes.util.find_library("edgeload")
    if found:
        yield found


def _load():
    tried = []
    for cand in _candidates():
        if os.sep in cand and not os.path.exists(cand):
            tried.append(cand + " (absent)")
            continue
        try:
            return ctypes.CDLL(cand), cand
        except OSError as e:
            tried.append("%s (%s)" % (cand, e))
    raise ImportError("edgeload: cannot load libedgeload.so.0: tried %s; install libedgeload0 "
                      "or set $EDGELOAD_LIBRARY to the .so or $EDGELOAD_PREFIX to the install "
                      "prefix" % "; ".join(tried))


_lib, _lib_path = _load()

c_u32, c_u64, c_i32, c_f32, c_f64 = (ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int32,
                                     ctypes.c_float, ctypes.c_double)
c_enum = ctypes.c_int
_NREGIONS = 6  # EL_REGION_COUNT
_REGIONS = ("weights", "kv", "scratch", "staging", "act", "tokenizer")
_STATUS = ("EL_OK", "EL_E_USAGE", "EL_E_INVALID", "EL_E_UNSUPPORTED", "EL_E_NOFIT",
           "EL_E_NOMEM", "EL_E_IO", "EL_E_NODEV", "EL_E_TOOLONG")
_DEVICES = {"cpu": 0, "cuda": 1, "auto": 2}
_POOLING = {"mean": 0, "cls": 1}


class PlanParams(ctypes.Structure):
    _fields_ = [("ctx", c_u32), ("batch", c_u32), ("dtype", c_enum), ("chunk_bytes", c_u64),
                ("memory", c_enum), ("kv_dtype", c_enum)]


class Plan(ctypes.Structure):
    _fields_ = [("params", PlanParams), ("region_bytes", c_u64 * _NREGIONS),
                ("total_bytes", c_u64), ("read_bytes", c_u64), ("tensor_count", c_u64),
                ("quantized_count", c_u64), ("kept_count", c_u64), ("max_input", c_u64),
                ("input_bytes", c_u64), ("streamed", ctypes.c_bool),
                ("stream_slot_bytes", c_u64), ("stream_pass_bytes", c_u64),
                ("stream_layers", c_u32), ("stream_slots", c_u32), ("stream_pinned", c_u32),
                ("stream_stage_bytes", c_u64), ("stream_direct", ctypes.c_bool)]


class ArenaParams(ctypes.Structure):
    _fields_ = [("size", c_u64), ("region_bytes", c_u64 * _NREGIONS), ("flags", ctypes.c_uint),
                ("memory", c_enum), ("gpu", ctypes.c_int)]


class ModelOpenParams(ctypes.Structure):
    _fields_ = [("tokenizer_path", ctypes.c_char_p), ("offset", c_u64)]


class SessionParams(ctypes.Structure):
    _fields_ = [("threads", ctypes.c_uint), ("device", c_enum), ("prefill_chunk", c_u32),
                ("no_cuda_graph", ctypes.c_bool)]


class EncoderParams(ctypes.Structure):
    _fields_ = [("threads", ctypes.c_uint), ("device", c_enum)]


class SamplerParams(ctypes.Structure):
    _fields_ = [("temperature", c_f32), ("top_k", c_u32), ("top_p", c_f32), ("seed", c_u64)]


class GenStats(ctypes.Structure):
    _fields_ = [("prompt_tokens", c_u32), ("generated_tokens", c_u32),
                ("prompt_seconds", c_f64), ("gen_seconds", c_f64),
                ("first_token_seconds", c_f64), ("prompt_tok_per_s", c_f64),
                ("gen_tok_per_s", c_f64), ("stopped_at_eos", ctypes.c_bool)]


TokenFn = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, c_i32, ctypes.POINTER(ctypes.c_char),
                           ctypes.c_size_t)

_P = ctypes.POINTER
_vp = ctypes.c_void_p
_status = c_enum


def _bind(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


el_status_str = _bind("el_status_str", ctypes.c_char_p, _status)
el_status_exit_code = _bind("el_status_exit_code", ctypes.c_int, _status)
el_last_error = _bind("el_last_error", ctypes.c_char_p)
el_dtype_parse = _bind("el_dtype_parse", _status, ctypes.c_char_p, _P(c_enum))
el_model_open = _bind("el_model_open", _status, ctypes.c_char_p, _P(ModelOpenParams), _P(_vp))
el_model_close = _bind("el_model_close", None, _vp)
el_model_family = _bind("el_model_family", ctypes.c_char_p, _vp)
el_model_format = _bind("el_model_format", ctypes.c_char_p, _vp)
el_plan_make = _bind("el_plan_make", _status, _vp, _P(PlanParams), _P(Plan))
el_device_resolve_model = _bind("el_device_resolve_model", _status, _vp, c_enum, c_enum,
                                _P(c_enum), _P(c_enum), ctypes.c_char_p, ctypes.c_size_t)
el_plan_check = _bind("el_plan_check", _status, _vp, _P(Plan), c_u64)
el_plan_arena_params = _bind("el_plan_arena_params", None, _P(Plan), c_u64, ctypes.c_uint,
                             _P(ArenaParams))
el_arena_init = _bind("el_arena_init", _status, _P(_vp), _P(ArenaParams))
el_arena_deinit = _bind("el_arena_deinit", None, _vp)
el_model_load = _bind("el_model_load", _status, _vp, _P(Plan), _vp, _vp, _vp)
el_session_init = _bind("el_session_init", _status, _vp, _vp, _P(Plan), _P(SessionParams),
                        _P(_vp))
el_session_deinit = _bind("el_session_deinit", None, _vp)
el_generate = _bind("el_generate", _status, _vp, ctypes.c_char_p, c_u32, _P(SamplerParams),
                    TokenFn, _vp, _P(GenStats))
el_tokenize = _bind("el_tokenize", _status, _vp, ctypes.c_char_p, ctypes.c_size_t,
                    ctypes.c_bool, _P(c_i32), ctypes.c_size_t, _P(ctypes.c_size_t))
el_encoder_init = _bind("el_encoder_init", _status, _vp, _vp, _P(Plan), _P(EncoderParams),
                        _P(_vp))
el_encoder_deinit = _bind("el_encoder_deinit", None, _vp)
el_encoder_dim = _bind("el_encoder_dim", c_u32, _vp)
el_encoder_max_seq = _bind("el_encoder_max_seq", c_u32, _vp)
el_encoder_max_batch = _bind("el_encoder_max_batch", c_u32, _vp)
el_encoder_labels = _bind("el_encoder_labels", c_u32, _vp)
el_encoder_label = _bind("el_encoder_label", ctypes.c_char_p, _vp, c_u32)
el_encoder_tokenize = _bind("el_encoder_tokenize", _status, _vp, ctypes.c_char_p,
                            ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t,
                            _P(c_i32), _P(c_i32), ctypes.c_size_t, _P(ctypes.c_size_t),
                            _P(ctypes.c_bool))
el_embed = _bind("el_embed", _status, _vp, _P(c_i32), _P(c_i32), _P(c_u32), c_u32, c_u32,
                 c_enum, ctypes.c_bool, _P(c_f32), ctypes.c_size_t)
el_classify = _bind("el_classify", _status, _vp, _P(c_i32), _P(c_i32), _P(c_u32), c_u32, c_u32,
                    _P(c_f32), _P(c_f32), ctypes.c_size_t)

# ---- errors -------------------------------------------------------------------------


class EdgeloadError(Exception):
    """A failed el_* call: status (e.g. "EL_E_NOFIT"), code (the CLI exit code), message."""

    def __init__(self, what, st):
        self.status = _STATUS[st] if 0 <= st < len(_STATUS) else "status %d" % st
        self.code = el_status_exit_code(st)
        msg = (el_last_error() or b"").decode("utf-8", "replace")
        super().__init__("%s: %s: %s" % (what, el_status_str(st).decode(), msg))


def _check(what, st):
    if st != 0:
        raise EdgeloadError(what, st)


def version():
    """The library's version (EL_VERSION_STRING of the header this binding mirrors)."""
    return "0.1.0"


def library_path():
    """The shared library this module loaded."""
    return _lib_path


# ---- plans --------------------------------------------------------------------------


def _dtype(dtype):
    if dtype is None:
        return -1  # EL_DT_NONE: as stored
    out = c_enum()
    _check("dtype", el_dtype_parse(dtype.encode(), ctypes.byref(out)))
    return out.value


def _open(path, tokenizer):
    m = _vp()
    op = ModelOpenParams(tokenizer.encode() if tokenizer else None, 0)
    _check("open %s" % path, el_model_open(os.fsencode(path), ctypes.byref(op), ctypes.byref(m)))
    return m


def _make_plan(m, ctx, batch, dtype, memory=0):
    pp = PlanParams(ctx, batch, _dtype(dtype), 0, memory, -1)  # kv_dtype: the default (f16)
    plan = Plan()
    _check("plan", el_plan_make(m, ctypes.byref(pp), ctypes.byref(plan)))
    return plan


def _plan_dict(plan):
    return {"ctx": plan.params.ctx, "batch": plan.params.batch,
            "total_bytes": plan.total_bytes, "read_bytes": plan.read_bytes,
            "regions": dict(zip(_REGIONS, plan.region_bytes)),
            "tensors": plan.tensor_count, "quantized": plan.quantized_count,
            "kept": plan.kept_count}


def plan(path, ctx=0, batch=1, dtype=None, arena=None, tokenizer=None):
    """The memory plan of a model from its headers (no weight is read): a dict with
    total_bytes (the arena it needs), read_bytes and bytes per region. With arena (bytes),
    raises EdgeloadError EL_E_NOFIT when the plan does not fit, saying what would."""
    m = _open(path, tokenizer)
    try:
        p = _make_plan(m, ctx, batch, dtype)
        if arena is not None:
            _check("plan", el_plan_check(m, ctypes.byref(p), arena))
        d = _plan_dict(p)
        d["family"] = el_model_family(m).decode()
        d["format"] = el_model_format(m).decode()
        return d
    finally:
        el_model_close(m)


# ---- models -------------------------------------------------------------------------


class Generation:
    """What generate() returns: text (str), ids (generated token ids), stats (dict)."""

    def __init__(self, text, ids, stats):
        self.text, self.ids, self.stats = text, ids, stats

    def __repr__(self):
        return "Generation(%r, %d tokens)" % (self.text, len(self.ids))


class Model:
    """A loaded model in its own arena: el_model_open, el_plan_make (ctx tokens; batch
    sequences for encoders), el_arena_init (arena bytes, default the plan's total),
    el_model_load, then a session (decoders) or an encoder (bert). close() or `with`."""

    def __init__(self, path, ctx=0, batch=1, dtype=None, arena=None, threads=0, device="cpu",
                 tokenizer=None):
        self._m = self._a = self._s = self._e = None
        self._m = _open(path, tokenizer)
        try:
            self.family = el_model_family(self._m).decode()
            # The device and the arena's memory, as the CLI picks them (--device); auto
            # falls back to the CPU when the GPU cannot hold the arena. self.device_why
            # says what was chosen and why.
            dev, mem = c_enum(0), c_enum(0)
            why = ctypes.create_string_buffer(800)
            _check("device", el_device_resolve_model(self._m, _DEVICES[device], 0,
                                                     ctypes.byref(dev), ctypes.byref(mem),
                                                     why, len(why)))
            self.device_why = why.value.decode("utf-8", "replace")
            while True:
                self._plan = _make_plan(self._m, ctx, batch, dtype, mem.value)
                size = self._plan.total_bytes if arena is None else arena
                _check("plan", el_plan_check(self._m, ctypes.byref(self._plan), size))
                ap = ArenaParams()
                el_plan_arena_params(ctypes.byref(self._plan), size, 0, ctypes.byref(ap))
                ap.memory = mem.value
                a = _vp()
                st = el_arena_init(ctypes.byref(a), ctypes.byref(ap))
                if st == _STATUS.index("EL_E_NODEV") and device == "auto" and mem.value != 0:
                    self.device_why = "cpu (auto: %s)" % el_last_error().decode()
                    dev.value, mem.value = 0, 0
                    continue
                _check("arena", st)
                break
            self._a = a
            self.device = [k for k, v in _DEVICES.items() if v == dev.value][0]
            _check("load", el_model_load(self._m, ctypes.byref(self._plan), self._a, None, None))
            dev = dev.value
            h = _vp()
            if self.family == "bert":
                ep = EncoderParams(threads, dev)
                _check("encoder", el_encoder_init(self._m, self._a, ctypes.byref(self._plan),
                                                  ctypes.byref(ep), ctypes.byref(h)))
                self._e = h
            else:
                sp = SessionParams(threads, dev, 0)
                _check("session", el_session_init(self._m, self._a, ctypes.byref(self._plan),
                                                  ctypes.byref(sp), ctypes.byref(h)))
                self._s = h
        except BaseException:
            self.close()
            raise

    @property
    def plan(self):
        return _plan_dict(self._plan)

    def close(self):
        if self._s:
            el_session_deinit(self._s)
        if self._e:
            el_encoder_deinit(self._e)
        if self._a:
            el_arena_deinit(self._a)
        if self._m:
            el_model_close(self._m)
        self._m = self._a = self._s = self._e = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _need(self, what, handle):
        if handle is None:
            raise EdgeloadError("%s: not available for a %s model (or the model is closed)"
                                % (what, self.family), 1)
        return handle

    # -- decoders --

    def tokenize(self, text, add_bos=True):
        """Token ids of text with the model's tokenizer."""
        b = text.encode("utf-8")
        cap = len(b) + 2
        ids = (c_i32 * cap)()
        n = ctypes.c_size_t()
        _check("tokenize", el_tokenize(self._need("tokenize", self._m), b, len(b), add_bos,
                                       ids, cap, ctypes.byref(n)))
        return list(ids[:n.value])

    def generate(self, prompt, max_tokens=64, temperature=0.0, top_k=0, top_p=0.0, seed=0,
                 on_token=None):
        """Generates up to max_tokens after prompt (greedy at temperature 0). on_token(id,
        text) is called for each token as it is produced; returning False stops. Text is
        decoded as UTF-8 across tokens (a character split over byte tokens comes whole)."""
        s = self._need("generate", self._s)
        ids, chunks = [], []
        pending = [b""]
        error = []

        def cb(user, tid, piece, n):
            data = ctypes.string_at(piece, n)
            ids.append(tid)
            chunks.append(data)
            text = pending[0] + data
            try:
                s_out, pending[0] = text.decode("utf-8"), b""
            except UnicodeDecodeError as e:
                s_out, pending[0] = text[:e.start].decode("utf-8"), text[e.start:]
            if on_token is None:
                return True
            try:
                return on_token(tid, s_out) is not False
            except BaseException as e:  # kept and raised after el_generate returns
                error.append(e)
                return False

        fn = TokenFn(cb)
        sp = SamplerParams(temperature, top_k, top_p, seed)
        st = GenStats()
        rc = el_generate(s, prompt.encode("utf-8"), max_tokens, ctypes.byref(sp), fn, None,
                         ctypes.byref(st))
        if error:
            raise error[0]
        _check("generate", rc)
        stats = {k: getattr(st, k) for k, _ in GenStats._fields_}
        return Generation(b"".join(chunks).decode("utf-8", "replace"), ids, stats)

    # -- encoders --

    def _batch(self, what, texts, ids, type_ids, lengths):
        """(ids, type_ids, lengths, batch, seq) as ctypes arrays: from texts through the
        model's WordPiece tokenizer, or given ids (a list of lists of token ids)."""
        e = self._need(what, self._e)
        max_seq = el_encoder_max_seq(e)
        if texts is not None:
            if isinstance(texts, str):
                texts = [texts]
            ids, type_ids = [], []
            buf, tbuf = (c_i32 * max_seq)(), (c_i32 * max_seq)()
            n = ctypes.c_size_t()
            for t in texts:
                b = t.encode("utf-8")
                _check(what, el_encoder_tokenize(e, b, len(b), None, 0, 0, buf, tbuf, max_seq,
                                                 ctypes.byref(n), None))
                ids.append(list(buf[:n.value]))
                type_ids.append(list(tbuf[:n.value]))
        if not ids:
            raise EdgeloadError("%s: no input" % what, 1)
        batch = len(ids)
        lens = lengths or [len(r) for r in ids]
        seq = max(lens)
        flat, tflat = (c_i32 * (batch * seq))(), (c_i32 * (batch * seq))()
        for i, row in enumerate(ids):
            for j in range(lens[i]):
                flat[i * seq + j] = row[j]
                tflat[i * seq + j] = type_ids[i][j] if type_ids else 0
        return e, flat, tflat, (c_u32 * batch)(*lens), batch, seq

    def embed(self, texts=None, ids=None, type_ids=None, pooling="mean", normalize=False):
        """One vector (list of floats) per text, or per row of token ids."""
        e, flat, tflat, lens, batch, seq = self._batch("embed", texts, ids, type_ids, None)
        dim = el_encoder_dim(e)
        out = (c_f32 * (batch * dim))()
        _check("embed", el_embed(e, flat, tflat, lens, batch, seq, _POOLING[pooling],
                                 normalize, out, batch * dim))
        return [list(out[i * dim:(i + 1) * dim]) for i in range(batch)]

    def labels(self):
        e = self._need("labels", self._e)
        return [el_encoder_label(e, i).decode() for i in range(el_encoder_labels(e))]

    def classify(self, texts=None, ids=None, type_ids=None, logits=False):
        """Per input a dict {label: probability} (as transformers' text-classification
        pipeline scores them); logits=True returns (probs dicts, raw logits lists)."""
        e, flat, tflat, lens, batch, seq = self._batch("classify", texts, ids, type_ids, None)
        names = self.labels()
        k = len(names)
        lo, pr = (c_f32 * max(1, batch * k))(), (c_f32 * max(1, batch * k))()
        _check("classify", el_classify(e, flat, tflat, lens, batch, seq, lo, pr, batch * k))
        probs = [dict(zip(names, pr[i * k:(i + 1) * k])) for i in range(batch)]
        if logits:
            return probs, [list(lo[i * k:(i + 1) * k]) for i in range(batch)]
        return probs
