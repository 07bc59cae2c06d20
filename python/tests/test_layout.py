"""The ctypes structs against the C header: a probe compiled against the installed
edgeload.h prints sizeof and every offsetof; the binding must agree field for field."""
import ctypes
import os
import shutil
import subprocess

import pytest

from edgeload import _api

STRUCTS = {"el_plan_params": _api.PlanParams, "el_plan": _api.Plan,
           "el_arena_params": _api.ArenaParams, "el_model_open_params": _api.ModelOpenParams,
           "el_session_params": _api.SessionParams, "el_encoder_params": _api.EncoderParams,
           "el_sampler_params": _api.SamplerParams, "el_gen_stats": _api.GenStats}


def include_dir():
    lib = os.path.realpath(_api.library_path())
    d = os.path.dirname(lib)
    while d != os.path.dirname(d):  # <prefix>/lib[/<multiarch>]/libedgeload.so.0
        if os.path.exists(os.path.join(d, "include", "edgeload.h")):
            return os.path.join(d, "include")
        d = os.path.dirname(d)
    return None


def test_struct_layouts(tmp_path):
    inc = include_dir()
    cc = shutil.which("cc") or shutil.which("gcc")
    if not inc or not cc:
        pytest.skip("needs a C compiler and the installed edgeload.h next to the library")
    lines = ["#include <edgeload.h>", "#include <stddef.h>", "#include <stdio.h>",
             "int main(void) {"]
    for cname, py in STRUCTS.items():
        lines.append('printf("%s sizeof %%zu\\n", sizeof(%s));' % (cname, cname))
        for f, _ in py._fields_:
            lines.append('printf("%s %s %%zu\\n", offsetof(%s, %s));' % (cname, f, cname, f))
    lines.append("return 0; }")
    src = tmp_path / "probe.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "probe"
    subprocess.run([cc, "-std=c11", "-I", inc, str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        cname, field, value = line.split()
        py = STRUCTS[cname]
        got = ctypes.sizeof(py) if field == "sizeof" else getattr(py, field).offset
        assert got == int(value), "%s.%s: C %s, ctypes %d" % (cname, field, value, got)
