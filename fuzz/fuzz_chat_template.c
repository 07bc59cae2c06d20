/* fuzz_chat_template.c - libFuzzer target for chat templates (tokenizer/chat_template.c):
 * the input is a template from a (hostile) model file, rendered for a fixed conversation
 * with tool calls, tools and extra variables, under small limits so that every input ends
 * quickly. Checks the contract in chat_template.h beyond memory safety: the status is one
 * of the documented ones with a message; a success is NUL-terminated, within the buffer,
 * valid UTF-8 and deterministic; one byte less of output room gives EL_E_NOFIT; a template
 * that renders also passes el_chat_check. */
#include "fuzz/fuzz_chat.h"

static const char msgs[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Hi {{ x }} \\u00e9\\ud83d\\ude00 \"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"call12345\",\"type\":\"function\","
    "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":[true,null,2.5]}}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call12345\",\"content\":\"42\"},"
    "{\"role\":\"user\",\"content\":\"  again\\n\"}]";
static const char tools[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\",\"parameters\":"
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}}}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *t = (const char *)data;
    static const el_chat_var vars[] = {{"date_string", "\"26 Jul 2024\"", 13}, {"enable_thinking", "false", 5}};
    el_chat_opts o = {.add_generation_prompt = size & 1, .bos_token = "<s>", .eos_token = "</s>",
                      .tools_json = (size & 2) ? tools : NULL, .tools_json_len = sizeof tools - 1,
                      .vars = vars, .n_vars = 2, .now = 1700000000, .max_iters = 2000, .max_steps = 100000};
    size_t n;
    if (fz_chat_render(t, size, msgs, sizeof msgs - 1, &o, &n) != EL_OK) return 0;
    size_t n2;
    if (n > 0)
        CHECK(el_chat_render_json(t, size, msgs, sizeof msgs - 1, &o, fz_work, FZ_WORK_CAP, fz_out2, n, &n2) ==
              EL_E_NOFIT);
    CHECK(el_chat_check(t, size, fz_work, FZ_WORK_CAP) == EL_OK);
    return 0;
}
