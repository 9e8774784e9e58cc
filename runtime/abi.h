/*
 * abi.h - what the engine (engine.c) and its ABI front-ends (abi_*.c) share.
 *
 * The engine owns the descriptor state machine: the lock, the transitions
 * and the dispatch of a command to the ABI that owns it.  Each front-end
 * owns one kernel's rules: which state and which arguments its commands
 * accept, in which order they are checked, the errno of each refusal, and
 * its mmap rules.  A front-end changes a descriptor only through the
 * transitions below, as FreeBSD's kern_kcov.c keeps the device apart from
 * the compiler-facing subr_coverage.c.  The ioctl numbers are in kcov_abi.h.
 *
 * Everything here runs on the control path, never while recording.
 */
#ifndef KCOV_ABI_FRONTENDS_H
#define KCOV_ABI_FRONTENDS_H

#include "engine.h"

/* errno values, so the engine needs no libc header (Linux/x86 numbering). */
#define K_EPERM      1
#define K_ENXIO      6
#define K_EBADF      9
#define K_ENOMEM     12
#define K_EACCES     13
#define K_EFAULT     14
#define K_EBUSY      16
#define K_EEXIST     17
#define K_EINVAL     22
#define K_ENOTTY     25
#define K_ENOENT     2
#define K_ENOBUFS    105
#define K_EOPNOTSUPP 95

/* --- Transitions (engine.c), called with the descriptor lock held -------- */

/* OPEN -> READY: allocate the buffer of `n` entries for `abi`; 0 or errno. */
int kcov_alloc_locked(struct kcov_desc *d, uint64_t n, uint32_t abi,
    void *pctx);

/* READY -> RUNNING on the calling thread `td`, recording in `tmode`. */
void kcov_start_locked(struct kcov_desc *d, struct kcov_thread *td,
    uint32_t tmode);

/* RUNNING -> READY.  `td` is the owner's state when the caller has it. */
void kcov_stop_locked(struct kcov_desc *d, struct kcov_thread *td);

/* 1 if `d` is RUNNING and owned by the calling thread `td`. */
int kcov_is_owner(const struct kcov_desc *d, const struct kcov_thread *td);

/* --- Front-ends (abi_*.c) ------------------------------------------------ */

/*
 * One ioctl worker per ABI, called by kcov_ioctl() with the lock held once
 * `cmd` is known to be that ABI's.  FreeBSD and Linux take their argument
 * by value; NetBSD and OpenBSD get it already copied in (`argv`), as their
 * kernels copy it before the driver runs.  Return 0 or a positive errno.
 */
int kcov_freebsd_locked(struct kcov_desc *d, struct kcov_thread *td,
    unsigned long cmd, uintptr_t arg, void *pctx);
int kcov_linux_locked(struct kcov_desc *d, struct kcov_thread *td,
    unsigned long cmd, uintptr_t arg, void *pctx);
int kcov_netbsd_locked(struct kcov_desc *d, struct kcov_thread *td,
    unsigned long cmd, const uint64_t *argv, void *pctx);
int kcov_openbsd_locked(struct kcov_desc *d, struct kcov_thread *td,
    unsigned long cmd, const uint64_t *argv, void *pctx);

/* An mmap request, as kcov_mmap_check() received it. */
struct kcov_mmap_req {
	uint64_t len;  /* bytes asked for, not 0 */
	uint64_t rlen; /* len rounded up to a page */
	uint64_t pagesize;
	int64_t off; /* offset into the file */
	int prot_read, prot_write, prot_exec, shared;
	int sized; /* the descriptor has a buffer */
};

/*
 * One mmap rule per ABI: 0, with *boff set to the byte offset into the
 * buffer the mapping starts at (0 on entry), or a positive errno.
 */
int kcov_freebsd_mmap(const struct kcov_desc *d, const struct kcov_mmap_req *r,
    uint64_t *boff);
int kcov_linux_mmap(const struct kcov_desc *d, const struct kcov_mmap_req *r,
    uint64_t *boff);
int kcov_netbsd_mmap(const struct kcov_desc *d, const struct kcov_mmap_req *r,
    uint64_t *boff);
int kcov_openbsd_mmap(const struct kcov_desc *d, const struct kcov_mmap_req *r,
    uint64_t *boff);

#endif /* KCOV_ABI_FRONTENDS_H */
