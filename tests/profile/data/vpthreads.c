/*
 * vpthreads.c - snapshots of value profiles while threads record values.
 *
 *   vpthreads DIR SNAPSHOTS
 *
 * Four threads make indirect calls at 64 sites with up to 24 targets each,
 * more values than the pool holds, so lists grow, the pool runs out, and
 * full sites keep replacing values, all while the main thread takes
 * SNAPSHOTS raw profiles of this image two ways: through the registry
 * (kcovprof_snapshot, the buffer writer) into DIR/buf-N.profraw, and
 * through the streaming writer (kcovprof_write) of a module description
 * of its own into DIR/stream-N.profraw.  Every file must be a well-formed
 * profile.  Once the threads are done, both writers must give the same
 * bytes (exit 3 otherwise).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kcovprof.h>

typedef uint32_t (*fn_t)(uint32_t);

#define F(n) static uint32_t f##n(uint32_t x) { return x * (2u * n + 1u) + n; }
F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)
F(12) F(13) F(14) F(15) F(16) F(17) F(18) F(19) F(20) F(21) F(22) F(23)
static fn_t const fns[24] = {
	f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11,
	f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
};

static fn_t pick(uint32_t i)
{
	fn_t volatile f = fns[i % 24];
	return f;
}

#define C(k) case k: return pick(t)(x);
static uint32_t site(uint32_t k, uint32_t t, uint32_t x)
{
	switch (k) {
	C(0) C(1) C(2) C(3) C(4) C(5) C(6) C(7) C(8) C(9) C(10) C(11) C(12) C(13) C(14) C(15)
	C(16) C(17) C(18) C(19) C(20) C(21) C(22) C(23) C(24) C(25) C(26) C(27) C(28) C(29) C(30) C(31)
	C(32) C(33) C(34) C(35) C(36) C(37) C(38) C(39) C(40) C(41) C(42) C(43) C(44) C(45) C(46) C(47)
	C(48) C(49) C(50) C(51) C(52) C(53) C(54) C(55) C(56) C(57) C(58) C(59) C(60) C(61) C(62) C(63)
	}
	return x;
}

static volatile int stop;

static void *worker(void *arg)
{
	uint64_t r = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
	uint32_t acc = 0;

	while (!stop) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		acc = site((uint32_t)(r % 64), (uint32_t)((r >> 6) % 24), acc);
	}
	return (void *)(uintptr_t)acc;
}

#define KP_SECTION(sec)                                                        \
	extern char __start_##sec[] __attribute__((weak, visibility("hidden"))); \
	extern char __stop_##sec[] __attribute__((weak, visibility("hidden")))
KP_SECTION(__llvm_prf_data);
KP_SECTION(__llvm_prf_cnts);
KP_SECTION(__llvm_prf_bits);
KP_SECTION(__llvm_prf_names);
extern const uint64_t __llvm_profile_raw_version __attribute__((weak, visibility("hidden")));

struct sink {
	char *p;
	size_t len, cap;
};

#define NOPROF __attribute__((no_profile_instrument_function))

/* The main thread's code counts nothing: at rest, the two writers must
 * see the same counters. */
NOPROF static int sink_write(void *ctx, const void *data, size_t len)
{
	struct sink *s = ctx;

	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->p = realloc(s->p, s->cap);
		if (s->p == NULL)
			return 1;
	}
	if (data == NULL)
		memset(s->p + s->len, 0, len);
	else
		memcpy(s->p + s->len, data, len);
	s->len += len;
	return 0;
}

NOPROF static void save(const char *dir, const char *kind, int i, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s-%03d.profraw", dir, kind, i);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

NOPROF int main(int argc, char **argv)
{
	struct kcovprof_info info[8];
	struct kcovprof_module m;
	pthread_t t[4];
	size_t cap = 1 << 16;
	char *buf = malloc(cap);
	int nsnap, i, n;
	uint64_t id = 0;

	if (argc != 3)
		return 2;
	nsnap = atoi(argv[2]);
	n = kcovprof_modules(info, 8);
	memset(&m, 0, sizeof(m));
	for (i = 0; i < n && i < 8; i++) {
		if (info[i].num_data > 0 && id == 0) {
			id = info[i].id;
			m.build_id_len = info[i].build_id_len;
			memcpy(m.build_id, info[i].build_id, info[i].build_id_len);
		}
	}
	m.abi = KCOVPROF_MODULE_ABI;
	m.raw_version_var = &__llvm_profile_raw_version;
	m.sec.data_begin = __start___llvm_prf_data;
	m.sec.data_end = __stop___llvm_prf_data;
	m.sec.cnts_begin = __start___llvm_prf_cnts;
	m.sec.cnts_end = __stop___llvm_prf_cnts;
	m.sec.bits_begin = __start___llvm_prf_bits;
	m.sec.bits_end = __stop___llvm_prf_bits;
	m.sec.names_begin = __start___llvm_prf_names;
	m.sec.names_end = __stop___llvm_prf_names;
	if (id == 0 || kcovprof_module_init(&m) != KCOVPROF_OK) {
		fprintf(stderr, "vpthreads: no instrumented module\n");
		return 1;
	}
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	for (i = 0; i < nsnap; i++) {
		struct sink s = { NULL, 0, 0 };
		int64_t k;

		while ((k = kcovprof_snapshot(id, buf, cap)) == KCOVPROF_ENOSPC)
			buf = realloc(buf, cap *= 2);
		if (k < 0 || kcovprof_write(&m, sink_write, &s) != KCOVPROF_OK) {
			fprintf(stderr, "vpthreads: snapshot %d failed: %lld\n", i, (long long)k);
			return 1;
		}
		save(argv[1], "buf", i, buf, (size_t)k);
		save(argv[1], "stream", i, s.p, s.len);
		free(s.p);
	}
	stop = 1;
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	{
		struct sink s = { NULL, 0, 0 };
		int64_t k;

		while ((k = kcovprof_snapshot(id, buf, cap)) == KCOVPROF_ENOSPC)
			buf = realloc(buf, cap *= 2);
		if (k < 0 || kcovprof_write(&m, sink_write, &s) != KCOVPROF_OK ||
		    (size_t)k != s.len || kcovprof_size(&m) != k || memcmp(buf, s.p, s.len) != 0) {
			fprintf(stderr, "vpthreads: the writers disagree at rest (%lld vs %zu bytes)\n",
			    (long long)k, s.len);
			return 3;
		}
		save(argv[1], "final", 0, buf, (size_t)k);
	}
	return 0;
}
