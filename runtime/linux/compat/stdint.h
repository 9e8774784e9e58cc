/*
 * stdint.h for the kernel build of the engine: kbuild compiles with
 * -nostdinc, and the engine (written freestanding, for user space too) asks
 * for <stdint.h>.  <linux/types.h> has every type it uses: uint8_t..uint64_t,
 * int64_t and uintptr_t.
 */
#ifndef KCOV_COMPAT_STDINT_H
#define KCOV_COMPAT_STDINT_H
#include <linux/types.h>
#include <linux/limits.h>
/* What the profile runtime (../profile) uses beyond that. */
typedef long intptr_t;
#ifndef UINT64_MAX
#define UINT64_MAX U64_MAX
#endif
#ifndef UINT32_MAX
#define UINT32_MAX U32_MAX
#endif
#ifndef UINT64_C
#define UINT64_C(c) c##ULL
#endif
#endif
