/*
 * vpfix.c - a fixture for value profiling (IR PGO): indirect calls and
 * memory operations of run-time sizes, driven by the command line.
 *
 *   vpfix ic N SEED      a hot site (one target of six takes ~70%) and a
 *                        site spread over 40 targets (more than the 24
 *                        values a site keeps: eviction)
 *   vpfix mem N SEED     memcpy/memset/memmove of sizes 0-8, powers of two,
 *                        in between and above 512 (every memop bucket)
 *   vpfix many N SEED    64 call sites x up to 24 targets: more values
 *                        than the pool of value nodes holds
 *   vpfix reset N SEED   ic and mem, __llvm_profile_reset_counters, ic again
 *
 * Deterministic: the same arguments give the same calls.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void __llvm_profile_reset_counters(void);

typedef uint32_t (*fn_t)(uint32_t);

#define F(n) static uint32_t f##n(uint32_t x) { return x * (2u * n + 1u) + n; }
F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9)
F(10) F(11) F(12) F(13) F(14) F(15) F(16) F(17) F(18) F(19)
F(20) F(21) F(22) F(23) F(24) F(25) F(26) F(27) F(28) F(29)
F(30) F(31) F(32) F(33) F(34) F(35) F(36) F(37) F(38) F(39)

static fn_t const fns[40] = {
	f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
	f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31, f32, f33, f34, f35, f36, f37, f38, f39,
};

static uint64_t rng = 88172645463325252ull;

static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* Volatile: the compiler must not see through the table. */
static fn_t pick(uint32_t i)
{
	fn_t volatile f = fns[i % 40];
	return f;
}

static uint32_t hot_site(uint32_t x)
{
	uint32_t r = next() % 100;

	return pick(r < 70 ? 3 : r % 6)(x);
}

static uint32_t spread_site(uint32_t x)
{
	uint32_t r = next() % 100;

	/* 40 targets, the low ones more often than the high ones. */
	return pick(r < 50 ? r % 10 : r < 80 ? 10 + r % 10 : 20 + r % 20)(x);
}

static uint32_t ic(long n, uint32_t acc)
{
	for (long i = 0; i < n; i++)
		acc = hot_site(acc) ^ spread_site(acc + (uint32_t)i);
	return acc;
}

static unsigned char src[4096], dst[4096];

static size_t size_of(uint32_t r)
{
	switch (r % 10) {
	case 0: case 1: case 2: case 3:
		return 7;             /* dominant: worth a specialised copy */
	case 4:
		return r % 9;         /* 0-8, each its own bucket */
	case 5:
		return 16u << (r % 5); /* powers of two */
	case 6: case 7:
		return 9 + r % 500;   /* ranges between powers of two */
	default:
		return 513 + r % 3000; /* the last bucket */
	}
}

static uint32_t mem(long n, uint32_t acc)
{
	for (long i = 0; i < n; i++) {
		uint32_t r = next();
		size_t a = size_of(r), b = size_of(r >> 8);

		memcpy(dst, src + (r & 63), a);
		memset(dst + 64, (int)i, b % 1000);
		memmove(dst + 1, dst, (i & 1) ? 24 : b % 200);
		acc += dst[a % 4096 / 2] + dst[70];
	}
	return acc;
}

/* 64 distinct call sites, one per case. */
#define C(k) case k: return pick(t)(x);
static uint32_t many_site(uint32_t k, uint32_t t, uint32_t x)
{
	switch (k) {
	C(0) C(1) C(2) C(3) C(4) C(5) C(6) C(7) C(8) C(9) C(10) C(11) C(12) C(13) C(14) C(15)
	C(16) C(17) C(18) C(19) C(20) C(21) C(22) C(23) C(24) C(25) C(26) C(27) C(28) C(29) C(30) C(31)
	C(32) C(33) C(34) C(35) C(36) C(37) C(38) C(39) C(40) C(41) C(42) C(43) C(44) C(45) C(46) C(47)
	C(48) C(49) C(50) C(51) C(52) C(53) C(54) C(55) C(56) C(57) C(58) C(59) C(60) C(61) C(62) C(63)
	}
	return x;
}

static uint32_t many(long n, uint32_t acc)
{
	for (long i = 0; i < n; i++) {
		uint32_t r = next();

		acc = many_site(r % 64, (r >> 6) % 24, acc);
	}
	return acc;
}

int main(int argc, char **argv)
{
	long n;
	uint32_t acc = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: vpfix ic|mem|many|reset N SEED\n");
		return 2;
	}
	n = atol(argv[2]);
	rng += (uint64_t)atol(argv[3]) * 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(i * 131);
	if (strcmp(argv[1], "ic") == 0) {
		acc = ic(n, acc);
	} else if (strcmp(argv[1], "mem") == 0) {
		acc = mem(n, acc);
	} else if (strcmp(argv[1], "many") == 0) {
		acc = many(n, acc);
	} else if (strcmp(argv[1], "reset") == 0) {
		acc = ic(n, acc) + mem(n, acc);
		__llvm_profile_reset_counters();
		acc = ic(n / 2, acc);
	} else {
		fprintf(stderr, "vpfix: unknown mode %s\n", argv[1]);
		return 2;
	}
	printf("%u\n", acc);
	return 0;
}
