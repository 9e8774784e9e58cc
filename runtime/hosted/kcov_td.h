/*
 * kcov_td.h (hosted) - how a callback finds the calling thread's descriptor.
 *
 * One thread-local pointer, in the initial-exec TLS model: a single
 * %fs-relative load instead of a __tls_get_addr call per callback.  The
 * runtime is a shared library that Python may dlopen late, which then takes
 * the few bytes from glibc's static TLS surplus (checked by the tests that
 * import instrumented libraries).
 */
#ifndef KCOV_TD_H
#define KCOV_TD_H

#include "../engine.h"

extern __thread struct kcov_thread kcov_td
    __attribute__((tls_model("initial-exec")));

static inline KCOV_NOINSTR struct kcov_desc *
kcov_self_desc(void)
{
	return kcov_td.desc;
}

#endif /* KCOV_TD_H */
