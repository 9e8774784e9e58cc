/*
 * kern_target.h - the "kernel" the kcov clients under tests/runtime trace.
 *
 * kern_target.c is the only file built with -fsanitize-coverage; it stands
 * in for the syscall a kernel test would make.  Its functions live in their
 * own section, so a client can check that every recorded PC (a return
 * address inside an instrumented function) lies in [kern_text_lo,
 * kern_text_hi].
 */
#ifndef KERN_TARGET_H
#define KERN_TARGET_H

#include <stdint.h>

/* A constant kern_syscall() compares its argument with (a CONST record). */
#define	KERN_MAGIC	0x4b43u

/* The instrumented "system call": branches, compares and a switch. */
int	kern_syscall(int arg);

/* Bounds of the instrumented code, from the linker. */
extern char __start_kern_text[], __stop_kern_text[];

static inline int
kern_text_contains(uint64_t pc)
{
	return pc > (uint64_t)(uintptr_t)__start_kern_text &&
	    pc <= (uint64_t)(uintptr_t)__stop_kern_text;
}

#endif /* KERN_TARGET_H */
