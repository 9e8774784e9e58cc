/*
 * cmp_target.c - one comparison of each width, constant and not, each in
 * its own noinline function so that no compiler can fold or merge them.
 * Operands reach the functions through volatile globals, so the values are
 * unknown at compile time.  Built at -O1 and above, clang narrows the
 * promoted int compare of a uint8_t/uint16_t back to 8/16 bits; gcc does so
 * at every level.
 *
 * The expected records are listed in test_records.py.
 */
#include <stdint.h>

volatile uint8_t v1a = 0xab, v1b = 0xcd;
volatile int8_t v1s = -3;
volatile uint16_t v2a = 0xbeef, v2b = 0x8001;
volatile uint32_t v4a = 0xdeadbeef, v4b = 0x80000001;
volatile uint64_t v8a = 0xfedcba9876543210, v8b = 0x8000000000000001;
volatile float vfa = 1.5f, vfb = -2.25f;
volatile double vda = 3.0, vdb = -0.125;

#define NOINLINE __attribute__((noinline))

NOINLINE int cmp1(uint8_t a, uint8_t b) { return a == b; }
NOINLINE int ccmp1(uint8_t a) { return a == 0x5a; }
NOINLINE int scmp1(int8_t a) { return a == -7; }
NOINLINE int cmp2(uint16_t a, uint16_t b) { return a == b; }
NOINLINE int ccmp2(uint16_t a) { return a == 0xa55a; }
NOINLINE int cmp4(uint32_t a, uint32_t b) { return a == b; }
NOINLINE int ccmp4(uint32_t a) { return a == 0xc0ffee11; }
NOINLINE int cmp8(uint64_t a, uint64_t b) { return a == b; }
NOINLINE int ccmp8(uint64_t a) { return a == 0x123456789abcdef0; }
NOINLINE int cmpf(float a, float b) { return a < b; }
NOINLINE int cmpd(double a, double b) { return a < b; }

volatile int sink;

void
cmp_run(void)
{
	sink = cmp1(v1a, v1b);
	sink = ccmp1(v1a);
	sink = scmp1(v1s);
	sink = cmp2(v2a, v2b);
	sink = ccmp2(v2a);
	sink = cmp4(v4a, v4b);
	sink = ccmp4(v4a);
	sink = cmp8(v8a, v8b);
	sink = ccmp8(v8a);
	sink = cmpf(vfa, vfb);
	sink = cmpd(vda, vdb);
}
