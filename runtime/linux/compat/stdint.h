/*
 * stdint.h for the kernel build of the engine: kbuild compiles with
 * -nostdinc, and the engine (written freestanding, for user space too) asks
 * for <stdint.h>.  <linux/types.h> has every type it uses: uint8_t..uint64_t,
 * int64_t and uintptr_t.
 */
#ifndef KCOV_COMPAT_STDINT_H
#define KCOV_COMPAT_STDINT_H
#include <linux/types.h>
#endif
