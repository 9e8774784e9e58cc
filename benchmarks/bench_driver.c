/*
 * bench_driver.c - calls the SanitizerCoverage callbacks in a tight loop.
 *
 * usage: bench_driver pc-on|pc-off|cmp-on CALLS REPS
 *
 * The driver itself is not instrumented: it calls __sanitizer_cov_trace_pc
 * and __sanitizer_cov_trace_cmp8 by hand, 16 distinct call sites per loop
 * iteration, so what is measured is the callback and not instrumented code.
 * The same object links against libkcovrt.so or the reference runtime; it
 * finds out which one it got with dlsym() and sets tracing up accordingly.
 *
 * The buffer holds one batch of BATCH records and word 0 is reset after each
 * batch, so no call ever hits the full-buffer path.  After the first batch
 * the driver checks that exactly BATCH records (or none, for pc-off) were
 * written, so a benchmark of a runtime that silently records nothing fails
 * instead of looking fast.
 *
 * Prints one line: "calls=N total_calls=T best_ns_per_call=X", where N is
 * the calls of one timed repetition and T every call the process made (the
 * check batch included), the divisor for an instruction count.  Exit status 0, or 1 if the
 * set-up or the check fails.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define BATCH 4096 /* records per batch; a multiple of 16 */

#define FBSD_KIOENABLE     0x20046302UL
#define FBSD_KIOSETBUFSIZE 0x20046304UL
#define FBSD_PERSONALITY   1

void __sanitizer_cov_trace_pc(void);
void __sanitizer_cov_trace_cmp8(uint64_t, uint64_t);

typedef int kcovrt_open_t(int, int);
typedef int kcovrt_ioctl_t(int, unsigned long, uintptr_t);
typedef void *kcovrt_mmap_t(void *, size_t, int, int, int, off_t);
typedef void ref_enable_t(uint64_t *, uint64_t, int);

enum bench_case { CASE_PC_ON, CASE_PC_OFF, CASE_CMP_ON };

/*
 * Map a buffer of `entries` words and, unless `trace` is 0, enable tracing
 * on this thread in `mode` (0 = PC, 1 = CMP).  Returns the buffer or NULL.
 */
static uint64_t *
setup(uint64_t entries, int mode, int trace)
{
	kcovrt_open_t *kopen;
	kcovrt_ioctl_t *kioctl;
	kcovrt_mmap_t *kmmap;
	ref_enable_t *renable;
	uint64_t *buf;
	int fd;

	kopen = (kcovrt_open_t *)dlsym(RTLD_DEFAULT, "kcovrt_open");
	kioctl = (kcovrt_ioctl_t *)dlsym(RTLD_DEFAULT, "kcovrt_ioctl");
	kmmap = (kcovrt_mmap_t *)dlsym(RTLD_DEFAULT, "kcovrt_mmap");
	if (kopen != NULL && kioctl != NULL && kmmap != NULL) {
		fd = kopen(O_CLOEXEC, FBSD_PERSONALITY);
		if (fd < 0) {
			perror("kcovrt_open");
			return NULL;
		}
		if (kioctl(fd, FBSD_KIOSETBUFSIZE, entries) != 0) {
			perror("kcovrt_ioctl(KIOSETBUFSIZE)");
			return NULL;
		}
		buf = kmmap(NULL, entries * 8, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
		if (buf == MAP_FAILED) {
			perror("kcovrt_mmap");
			return NULL;
		}
		if (trace && kioctl(fd, FBSD_KIOENABLE, mode) != 0) {
			perror("kcovrt_ioctl(KIOENABLE)");
			return NULL;
		}
		return buf;
	}
	renable = (ref_enable_t *)dlsym(RTLD_DEFAULT, "ref_enable");
	if (renable == NULL) {
		fprintf(stderr, "neither kcovrt_open nor ref_enable found\n");
		return NULL;
	}
	buf = mmap(NULL, entries * 8, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return NULL;
	}
	if (trace)
		renable(buf, entries, mode);
	return buf;
}

#define R4(s)  s; s; s; s
#define R16(s) R4(s); R4(s); R4(s); R4(s)

/* One batch of BATCH calls; the loop counter feeds the compare operands. */
static void
run_batch(enum bench_case c)
{
	uint64_t i;

	if (c == CASE_CMP_ON) {
		for (i = 0; i < BATCH / 16; i++) {
			R16(__sanitizer_cov_trace_cmp8(i, 42));
			/* Keep the compiler from merging the iterations. */
			__asm__ volatile("" : "+r"(i));
		}
	} else {
		for (i = 0; i < BATCH / 16; i++) {
			R16(__sanitizer_cov_trace_pc());
			__asm__ volatile("" : "+r"(i));
		}
	}
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int
main(int argc, char **argv)
{
	enum bench_case c;
	volatile uint64_t *w0;
	uint64_t *buf, entries, batches, b, expect;
	double best, t0, t;
	long reps, r;

	if (argc != 4) {
		fprintf(stderr, "usage: bench_driver pc-on|pc-off|cmp-on CALLS REPS\n");
		return 64; /* EX_USAGE */
	}
	if (strcmp(argv[1], "pc-on") == 0)
		c = CASE_PC_ON;
	else if (strcmp(argv[1], "pc-off") == 0)
		c = CASE_PC_OFF;
	else if (strcmp(argv[1], "cmp-on") == 0)
		c = CASE_CMP_ON;
	else {
		fprintf(stderr, "bench_driver: unknown case %s\n", argv[1]);
		return 64;
	}
	batches = strtoull(argv[2], NULL, 0) / BATCH;
	reps = strtol(argv[3], NULL, 0);
	if (batches == 0 || reps <= 0) {
		fprintf(stderr, "bench_driver: CALLS must be >= %d, REPS >= 1\n",
		    BATCH);
		return 64;
	}

	/* FreeBSD maps only whole buffers: round up to a page of words. */
	entries = c == CASE_CMP_ON ? 1 + 4 * BATCH : 1 + BATCH;
	entries = (entries + 511) & ~(uint64_t)511;
	buf = setup(entries, c == CASE_CMP_ON ? 1 : 0, c != CASE_PC_OFF);
	if (buf == NULL)
		return 1;
	w0 = buf;

	/* Check that the runtime records what it should, and warm up. */
	run_batch(c);
	expect = c == CASE_PC_OFF ? 0 : BATCH;
	if (*w0 != expect) {
		fprintf(stderr, "bench_driver: %s: %ju records after one batch, "
		    "expected %ju\n", argv[1], (uintmax_t)*w0, (uintmax_t)expect);
		return 1;
	}
	*w0 = 0;

	best = 0;
	for (r = 0; r < reps; r++) {
		t0 = now_ns();
		for (b = 0; b < batches; b++) {
			run_batch(c);
			*w0 = 0;
		}
		t = now_ns() - t0;
		if (r == 0 || t < best)
			best = t;
	}
	printf("calls=%ju total_calls=%ju best_ns_per_call=%.4f\n",
	    (uintmax_t)(batches * BATCH),
	    (uintmax_t)((batches * (uint64_t)reps + 1) * BATCH),
	    best / (double)(batches * BATCH));
	return 0;
}
