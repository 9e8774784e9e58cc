/*
 * sancov.c - .sancov files from kcov PCs: freestanding C.
 *
 * The format is SanitizerCoverage's raw coverage file, as compiler-rt's
 * sanitizer_coverage_libcdep_new.cpp writes it and llvm's sancov reads it:
 * an 8-byte native-endian magic, 0xC0BFFFFFFFFFFF64 for 64-bit offsets
 * (read by the tool as { u32 Bitness = 0xFFFFFF64; u32 Magic = 0xC0BFFFFF }
 * on little-endian), then one 64-bit module-relative offset per covered PC.
 * A file covers one module: the tool pairs <module>.<pid>.sancov with the
 * binary of that name.
 *
 * kcov records the callback's return address.  compiler-rt stores the
 * previous instruction's PC instead (GetPreviousInstructionPc), and the
 * sancov tool computes coverage points the same way, so the adjustment
 * below is that function, per architecture.
 */
#include <stddef.h>
#include <stdint.h>

#include "kcovprof.h"
#include "kcov/noinstr.h"


/* compiler-rt's StackTrace::GetPreviousInstructionPc. */
KCOV_NOINSTR static uint64_t
kp_prev_insn(uint64_t pc)
{
#if defined(__arm__)
	return (pc - 3) & ~1ULL;
#elif defined(__mips__) || defined(__sparc__)
	return pc - 8;
#elif defined(__riscv)
	return pc - 2;
#elif defined(__x86_64__) || defined(__i386__) || defined(__s390__)
	return pc - 1;
#else
	return pc - 4;
#endif
}

KCOV_PUBLIC int64_t
kcovprof_sancov_size(const uint64_t *pcs, size_t n, uint64_t lo, uint64_t hi)
{
	int64_t size = 8;
	size_t i;

	if (pcs == NULL && n != 0)
		return KCOVPROF_EINVAL;
	for (i = 0; i < n; i++)
		if (pcs[i] >= lo && pcs[i] < hi)
			size += 8;
	return size;
}

#define CHUNK 64

KCOV_PUBLIC int
kcovprof_sancov_write(const uint64_t *pcs, size_t n, uint64_t lo, uint64_t hi,
    uint64_t bias, kcovprof_write_fn fn, void *ctx)
{
	uint64_t tmp[CHUNK];
	size_t i, k = 0;

	if ((pcs == NULL && n != 0) || fn == NULL)
		return KCOVPROF_EINVAL;
	tmp[k++] = KCOVPROF_SANCOV_MAGIC64;
	for (i = 0; i < n; i++) {
		if (pcs[i] < lo || pcs[i] >= hi)
			continue;
		tmp[k++] = kp_prev_insn(pcs[i]) - bias;
		if (k == CHUNK) {
			if (fn(ctx, tmp, sizeof(tmp)))
				return KCOVPROF_EWRITE;
			k = 0;
		}
	}
	if (k != 0 && fn(ctx, tmp, k * 8))
		return KCOVPROF_EWRITE;
	return KCOVPROF_OK;
}

struct kp_sbuf {
	uint8_t *p;
	size_t left;
};

KCOV_NOINSTR static int
kp_sbuf_write(void *ctx, const void *data, size_t len)
{
	struct kp_sbuf *b = ctx;
	const uint8_t *d = data;
	size_t i;

	if (len > b->left)
		return 1;
	for (i = 0; i < len; i++)
		b->p[i] = d[i];
	b->p += len;
	b->left -= len;
	return 0;
}

KCOV_PUBLIC int64_t
kcovprof_sancov_write_buffer(const uint64_t *pcs, size_t n, uint64_t lo,
    uint64_t hi, uint64_t bias, void *buf, size_t cap)
{
	struct kp_sbuf b = { buf, cap };
	int64_t size = kcovprof_sancov_size(pcs, n, lo, hi);
	int err;

	if (size < 0)
		return size;
	if (buf == NULL || (uint64_t)size > cap)
		return KCOVPROF_ENOSPC;
	err = kcovprof_sancov_write(pcs, n, lo, hi, bias, kp_sbuf_write, &b);
	return err != KCOVPROF_OK ? err : size;
}
