/* chat_case.h - Unicode case mappings and properties for chat templates' string case
 * operations (internal), generated into tokenizer/chat_case_tables.c by
 * scripts/gen_chat_case.py from Python's str methods (what jinja2 calls). */
#ifndef EL_CHAT_CASE_H
#define EL_CHAT_CASE_H

#include <stdint.h>

enum { EL_CHAT_CASED = 1, EL_CHAT_LOWER = 2, EL_CHAT_UPPER = 4, EL_CHAT_TITLE = 8, EL_CHAT_IGNORABLE = 16 };

/* A run of consecutive code points with one-to-one mappings: position k maps by adding
 * even[] (k even) or odd[] (k odd) to the code point: {upper, lower, title} offsets. */
typedef struct el_chat_case_run {
    uint32_t start, n;
    int32_t even[3], odd[3];
} el_chat_case_run;

/* A code point with a longer mapping: nu/nl/nt code points for upper, lower, title. */
typedef struct el_chat_case_entry {
    uint32_t cp;
    uint8_t nu, nl, nt;
    uint32_t up[3], low[3], title[3];
} el_chat_case_entry;

extern const char el_chat_case_version[];
extern const uint32_t el_chat_case_run_count;
extern const el_chat_case_run el_chat_case_runs[];      /* sorted by start, disjoint */
extern const uint32_t el_chat_case_special_count;
extern const el_chat_case_entry el_chat_case_special[]; /* sorted by cp */
extern const uint32_t el_chat_case_flag_count;
extern const uint32_t el_chat_case_flag_start[];      /* ranges: start code points, sorted */
extern const uint8_t el_chat_case_flag_bits[];        /* EL_CHAT_* of each range */

#endif /* EL_CHAT_CASE_H */
