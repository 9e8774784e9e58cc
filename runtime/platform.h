/*
 * platform.h - what the engine needs from the OS glue.
 *
 * Implemented once for a user-space process (hosted/platform.c) and once for
 * the Linux kernel module (linux/).  None of these run on the hot path.
 */
#ifndef KCOV_PLATFORM_H
#define KCOV_PLATFORM_H

#include "engine.h"

/*
 * Allocate a zeroed buffer of `bytes` (a page multiple) for `d` and set
 * d->kbuf.  `pctx` is the platform context given to kcov_ioctl().  Returns 0
 * or ENOMEM.  Called with d->lock held.
 */
int kcov_plat_buf_alloc(struct kcov_desc *d, uint64_t bytes, void *pctx);

/* The page size the buffer is rounded to. */
uint64_t kcov_plat_pagesize(void);

/* Record the identity of the calling thread, whose state is `td`. */
void kcov_plat_owner_set(struct kcov_owner *o, struct kcov_thread *td);

/*
 * 1 if the owner thread no longer exists although it never ran its exit
 * hook (a forked child that called _exit(), a process that was killed).  A
 * kernel, whose exit hook always runs, answers 0.
 */
int kcov_plat_owner_gone(const struct kcov_owner *o);

/* 1 if the owner is the calling thread. */
int kcov_plat_owner_is_current(const struct kcov_owner *o,
    const struct kcov_thread *td);

/* Copy `len` bytes from the caller's address `uaddr`; 0 or EFAULT. */
int kcov_plat_copyin(void *dst, uintptr_t uaddr, size_t len);

/* The thread `td` now owns a descriptor: make sure its exit is seen. */
void kcov_plat_thread_bound(struct kcov_thread *td);

/*
 * The descriptor lock.  Hosted, a spin lock on d->lock, which works across
 * forked processes sharing the descriptor; a kernel may use a mutex, since
 * the hot path never takes it.
 */
void kcov_plat_lock(struct kcov_desc *d);
void kcov_plat_unlock(struct kcov_desc *d);

#endif /* KCOV_PLATFORM_H */
