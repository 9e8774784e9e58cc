/*
 * spin.c - instrumented code that keeps running on its own thread while the
 * test takes snapshots: kcov.profile must read every counter whole and give
 * a consistent header and data section at any moment.
 */
#include <pthread.h>
#include <stdint.h>

static volatile int stop;
static pthread_t th;

/* Not inlined: clang moves counter updates of a loop out of the loop
 * (counter promotion), but a call increments the callee's counters in
 * memory each time. */
static __attribute__((noinline)) uint64_t
mix(uint64_t x)
{
	x ^= x >> 13;
	if (x & 1)
		x *= 0x9e3779b97f4a7c15ULL;
	else
		x += 7;
	return x;
}

static void *
loop(void *arg)
{
	uint64_t x = (uintptr_t)arg;

	while (!stop)
		x = mix(x);
	return (void *)(uintptr_t)x;
}

int
spin_start(void)
{
	stop = 0;
	return pthread_create(&th, NULL, loop, (void *)1);
}

int
spin_stop(void)
{
	stop = 1;
	return pthread_join(th, NULL);
}

uint64_t
spin_once(uint64_t x)
{
	return mix(x);
}
