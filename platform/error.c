/* error.c - status strings, CLI exit codes and the per-thread last-error message. */
#include "platform/platform.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char t_last_error[1024];

static const char *const k_status_text[] = {
#define EL_X_TEXT(name, code, text) text,
    EL_STATUS_LIST(EL_X_TEXT)
#undef EL_X_TEXT
};

static const int k_status_exit[] = {
#define EL_X_CODE(name, code, text) code,
    EL_STATUS_LIST(EL_X_CODE)
#undef EL_X_CODE
};

const char *el_status_str(el_status s) {
    if ((int)s < 0 || s >= EL_STATUS_COUNT) return "unknown status";
    return k_status_text[s];
}

int el_status_exit_code(el_status s) {
    if ((int)s < 0 || s >= EL_STATUS_COUNT) return 2;
    return k_status_exit[s];
}

const char *el_last_error(void) { return t_last_error; }

el_status el_verrorf(el_status s, const char *fmt, va_list ap) {
    vsnprintf(t_last_error, sizeof t_last_error, fmt, ap);
    return s;
}

el_status el_errorf(el_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    s = el_verrorf(s, fmt, ap);
    va_end(ap);
    return s;
}

el_status el_error_set(el_status s, const char *msg) {
    snprintf(t_last_error, sizeof t_last_error, "%s", msg ? msg : "");
    return s;
}
