/* fuzz_chat_messages.c - libFuzzer target for the conversation side of chat templates
 * (tokenizer/chat_template.c): the input is a JSON messages array (from a chat request), and
 * when its length is odd also the tools JSON, rendered by a ChatML template and by one that
 * walks every message key with tojson, selectattr and namespaces. Checks the JSON reader and
 * the values it builds against the contract in chat_template.h: a documented status with a
 * message, or a NUL-terminated valid UTF-8 prompt that is the same when rendered twice. */
#include "fuzz/fuzz_chat.h"

static const char *const templates[] = {
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",

    "{%- set ns = namespace(n=0, last='') %}{%- if tools %}{%- for t in tools %}{{ t|tojson }}\n"
    "{{- t.function.name if t.function is defined }}{% endfor %}{%- endif %}"
    "{%- for m in messages %}{%- set ns.n = ns.n + 1 %}{%- set ns.last = m.role|string %}"
    "[{{ loop.index }}/{{ loop.length }} {{ m.role }}] {{ m.content|trim if m.content is string else m.content|tojson }}"
    "{%- for k, v in m|dictsort %} {{ k }}={{ v|tojson(indent=1) }}{% endfor %}"
    "{%- if m.tool_calls is defined %}{% for c in m.tool_calls %}{{ c.function.arguments|tojson(sort_keys=true) }}"
    "{% endfor %}{% endif %}{%- endfor %}{{ messages|selectattr('role', 'equalto', 'user')|list|length }}"
    "{{ ns.n }}{{ ns.last }}{{ messages|map(attribute='role')|join(',') }}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *j = (const char *)data;
    for (size_t k = 0; k < sizeof templates / sizeof templates[0]; k++) {
        el_chat_opts o = {.add_generation_prompt = true, .bos_token = "<s>", .eos_token = "</s>",
                          .tools_json = (size & 1) ? j : NULL, .tools_json_len = size, .now = 1700000000,
                          .max_iters = 5000, .max_steps = 200000};
        size_t n;
        fz_chat_render(templates[k], strlen(templates[k]), j, size, &o, &n);
    }
    return 0;
}
