/* stddef.h for the kernel build of the engine: size_t and NULL. */
#ifndef KCOV_COMPAT_STDDEF_H
#define KCOV_COMPAT_STDDEF_H
#include <linux/types.h>
#include <linux/stddef.h>
#endif
