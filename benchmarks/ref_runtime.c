/*
 * ref_runtime.c - the smallest correct kcov-style recorder, the yardstick
 * for bench_callbacks.py.
 *
 * It has what any thread-local kcov hot path must have and nothing else: one
 * initial-exec TLS load of the buffer pointer (NULL while the thread does not
 * trace), one bounds check against a capacity, the stores of the record, and
 * the count published last.  No descriptor, no state machine, no overflow
 * accounting, no way for another thread to stop the trace.  Whatever our
 * runtime's callbacks spend beyond this is the price of those features.
 *
 * It exports the same SanitizerCoverage symbols as libkcovrt.so, so the same
 * driver object links against either library, and is built with the flags of
 * the runtime (-O2 -fPIC -fvisibility=hidden, no coverage, no sanitizers).
 */
#include <stddef.h>
#include <stdint.h>

#if defined(__clang__)
#define REF_NOINSTR __attribute__((no_sanitize("coverage")))
#else
#define REF_NOINSTR __attribute__((no_sanitize_coverage))
#endif
#define REF_EXPORT REF_NOINSTR __attribute__((visibility("default")))
#define REF_RET_IP ((uint64_t)(uintptr_t)__builtin_return_address(0))

/*
 * One buffer pointer per mode, so that a callback of the other mode sees NULL
 * and returns at once, as a real runtime's mode check would make it.
 */
struct ref_thread {
	uint64_t *pc_buf;  /* PC mode buffer, or NULL */
	uint64_t *cmp_buf; /* CMP mode buffer, or NULL */
	uint64_t cap;      /* records that fit in the buffer in use */
};

static __thread struct ref_thread ref_td
    __attribute__((tls_model("initial-exec")));

/* Start tracing on the calling thread: mode 0 = PC, 1 = CMP. */
REF_EXPORT void
ref_enable(uint64_t *buf, uint64_t entries, int mode)
{
	ref_td.pc_buf = NULL;
	ref_td.cmp_buf = NULL;
	ref_td.cap = mode == 0 ? entries - 1 : (entries - 1) / 4;
	if (mode == 0)
		ref_td.pc_buf = buf;
	else
		ref_td.cmp_buf = buf;
}

REF_EXPORT void
ref_disable(void)
{
	ref_td.pc_buf = NULL;
	ref_td.cmp_buf = NULL;
	ref_td.cap = 0;
}

REF_EXPORT void
__sanitizer_cov_trace_pc(void)
{
	uint64_t *buf = ref_td.pc_buf, n;

	if (__builtin_expect(buf == NULL, 1))
		return;
	n = __atomic_load_n(&buf[0], __ATOMIC_RELAXED);
	if (__builtin_expect(n < ref_td.cap, 1)) {
		buf[n + 1] = REF_RET_IP;
		__atomic_store_n(&buf[0], n + 1, __ATOMIC_RELEASE);
	}
}

REF_EXPORT void
__sanitizer_cov_trace_cmp8(uint64_t a, uint64_t b)
{
	uint64_t *buf = ref_td.cmp_buf, *rec, n;

	if (__builtin_expect(buf == NULL, 1))
		return;
	n = __atomic_load_n(&buf[0], __ATOMIC_RELAXED);
	if (__builtin_expect(n < ref_td.cap, 1)) {
		rec = &buf[1 + 4 * n];
		rec[0] = 6; /* KCOV_CMP_SIZE(3): an 8-byte compare */
		rec[1] = a;
		rec[2] = b;
		rec[3] = REF_RET_IP;
		__atomic_store_n(&buf[0], n + 1, __ATOMIC_RELEASE);
	}
}
