/*
 * engine.h - the kcov engine: descriptor state machine and recording.
 *
 * One engine serves every ABI (FreeBSD, Linux, NetBSD, OpenBSD) and every
 * platform (a user-space process, a Linux kernel module).  It depends only on
 * freestanding headers; everything that touches the OS goes through the small
 * interface in platform.h.
 *
 * The lifetime of a descriptor (OPEN -> READY -> RUNNING -> DYING) is drawn
 * and described once, at the top of the public header include/kcovrt.h;
 * what follows is how the engine implements it.  A descriptor closed while
 * RUNNING on Linux or NetBSD keeps recording until its owner exits: the
 * "orphaned" flag keeps `active` set for it.
 *
 * Memory ordering.  Only the owner thread records, so the hot path needs no
 * atomics beyond single-copy loads and stores.  Entering RUNNING stores the
 * mode, owner and thread pointer first and publishes `active` and the hot
 * path's limit (`lim_pc`/`lim_cmp`: the capacity of the active mode, 0 for
 * the other) last with release stores; leaving RUNNING zeroes the limits
 * first.  A close from another thread does the same, and the owner's next
 * callback sees a zero limit (the pairing of FreeBSD's acquire load of
 * `state`).  The hot path tests the limit only: the mode test is folded into
 * the bounds test, which keeps enabled trace_pc within 1.25x of a bare TLS
 * buffer runtime (benchmarks/).
 *
 * Locking.  `lock` is a spin lock inside the descriptor, so it also works when
 * the descriptor lives in memory shared by forked processes.  Fields are
 * annotated like FreeBSD's struct kcov_info:
 *   (l) written under `lock` and never while RUNNING
 *   (o) set once while OPEN, torn down when freed
 *   (s) written under `lock` to enter or leave RUNNING
 *   (h) written by the owner thread on the hot path only
 */
#ifndef KCOV_ENGINE_H
#define KCOV_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "kcov/noinstr.h"
#include "kcov_abi.h"

#define kcov_likely(x)   __builtin_expect(!!(x), 1)
#define kcov_unlikely(x) __builtin_expect(!!(x), 0)

enum kcov_state {
	KCOV_STATE_INVALID = 0,
	KCOV_STATE_OPEN = 1,
	KCOV_STATE_READY = 2,
	KCOV_STATE_RUNNING = 3,
	KCOV_STATE_DYING = 4,
};

/* Engine trace modes: the value of `active` while recording. */
enum kcov_tmode {
	/* NetBSD's KCOV_MODE_NONE: enabled, records nothing */
	KCOV_TMODE_NONE = 0,
	KCOV_TMODE_PC = 1,
	KCOV_TMODE_CMP = 2,
};

/* Which ABI sized the descriptor; it decides mmap rules and close semantics. */
enum kcov_abi {
	KCOV_ABI_NONE = 0,
	KCOV_ABI_FREEBSD = 1,
	KCOV_ABI_LINUX = 2,
	KCOV_ABI_NETBSD = 3,
	KCOV_ABI_OPENBSD = 4,
};

#define KCOV_FLAG_ORPHANED 0x1u /* closed while RUNNING, still recording */

/* Identity of the owner thread, filled in by the platform. */
struct kcov_owner {
	int64_t pid;            /* process of the owner (hosted) */
	int64_t tid;            /* kernel thread id of the owner */
	uint64_t start;         /* start time, to tell a reused tid apart */
	struct kcov_thread *td; /* valid only inside the owner's process */
};

struct kcov_desc {
	uint32_t lock;    /* spin lock, see kcov_lock() */
	uint32_t state;   /* (s) enum kcov_state */
	uint32_t active;  /* (s) enum kcov_tmode + 1 while recording, else 0 */
	uint32_t abi;     /* (l) enum kcov_abi, fixed by the sizing ioctl */
	uint32_t mode;    /* (l) enum kcov_tmode of the last enable */
	uint32_t flags;   /* (l) KCOV_FLAG_* */
	uint64_t entries; /* (o) size as requested, in 8-byte entries */
	uint64_t bufsize; /* (o) bytes, rounded up to a page */
	uint64_t cap_pc;  /* (o) PC records that fit: entries - 1 */
	uint64_t cap_cmp; /* (o) CMP records that fit: (entries - 1) / 4 */
	uint64_t *kbuf;   /* (o) the engine's own mapping of the buffer */
	uint64_t dropped; /* (h) records dropped since the last reset */
	struct kcov_owner owner; /* (s) the thread the descriptor runs on */
	uint64_t generation;     /* (s) bumped on every enable */
	/*
	 * (s) What the hot path may write: the mode's capacity while `active`
	 * is that mode, else 0.  Folding the mode test into the bounds test
	 * saves the callbacks a load, a compare and a branch.
	 */
	uint64_t lim_pc;
	uint64_t lim_cmp;
};

/* Per-thread state: FreeBSD's td_kcov_info. Zeroed for every new thread. */
struct kcov_thread {
	struct kcov_desc *desc;
};

/* Values of `active`: off, or recording in a mode (+1 so 0 means off). */
#define KCOV_ACTIVE_OFF  0u
#define KCOV_ACTIVE_NONE (KCOV_TMODE_NONE + 1u)
#define KCOV_ACTIVE_PC   (KCOV_TMODE_PC + 1u)
#define KCOV_ACTIVE_CMP  (KCOV_TMODE_CMP + 1u)

/* Tunable upper bound for FreeBSD's KIOSETBUFSIZE (kern.kcov.max_entries). */
extern uint64_t kcov_max_entries;

/* --- Control path (engine.c) -------------------------------------------- */

void kcov_desc_init(struct kcov_desc *d);

/*
 * The ioctl entry point: takes the lock and hands off to the ABI worker that
 * owns `cmd`.  `personality` picks the ABI for the command numbers NetBSD and
 * OpenBSD share, and the errno of an unknown command on an unsized
 * descriptor.  Returns 0 or a positive errno.
 */
int kcov_ioctl(struct kcov_desc *d, struct kcov_thread *td, unsigned long cmd,
    uintptr_t arg, int personality, void *pctx);

/*
 * Check an mmap request against the rules of the ABI that sized `d` (or of
 * the device's personality, before sizing).  On success returns 0 and
 * sets *boff to the byte offset into the buffer the mapping starts at.
 */
int kcov_mmap_check(struct kcov_desc *d, int personality, uint64_t len,
    int prot_read, int prot_write, int prot_exec, int shared, int64_t off,
    uint64_t pagesize, uint64_t *boff);

/* Last close of the file.  Returns 1 if the caller must free `d` now. */
int kcov_close(struct kcov_desc *d);

/*
 * The thread `td` is exiting.  Returns the descriptor the caller must free
 * (one that was DYING), or NULL.
 */
struct kcov_desc *kcov_thread_exit(struct kcov_thread *td);

/* Snapshot of a descriptor for diagnostics and the Python API. */
struct kcov_desc_info {
	uint32_t state, abi, mode, active, flags;
	uint64_t entries, bufsize, dropped, count;
	uint64_t capacity; /* records that fit in the last enabled mode */
	int64_t owner_tid;
};
void kcov_desc_info(struct kcov_desc *d, struct kcov_desc_info *out);

/* User-visible reset: word 0 and the private overflow counter. */
void kcov_reset(struct kcov_desc *d);

/* --- Recording (hot path, inline) --------------------------------------- */

/*
 * Record one PC.  Only the owner thread gets here (the callback found `d`
 * through its own per-thread pointer), so plain loads and stores suffice; the
 * count is published after the record, like FreeBSD's trace_pc.  Word 0 is
 * user-writable, so the bound is checked against the engine's own capacity,
 * never trusted.
 */
static inline KCOV_NOINSTR void
kcov_trace_pc(struct kcov_desc *d, uint64_t pc)
{
	uint64_t *buf = d->kbuf, n;

	n = __atomic_load_n(&buf[0], __ATOMIC_RELAXED);
	if (kcov_likely(n < __atomic_load_n(&d->lim_pc, __ATOMIC_ACQUIRE))) {
		buf[n + 1] = pc;
		__atomic_store_n(&buf[0], n + 1, __ATOMIC_RELEASE);
	} else if (__atomic_load_n(&d->active, __ATOMIC_ACQUIRE) ==
	    KCOV_ACTIVE_PC) {
		d->dropped++;
	}
}

/* Record one comparison.  Returns 0 when the record was dropped (full). */
static inline KCOV_NOINSTR int
kcov_trace_cmp(struct kcov_desc *d, uint64_t type, uint64_t arg1, uint64_t arg2,
    uint64_t pc)
{
	uint64_t *buf = d->kbuf, *rec, n;

	n = __atomic_load_n(&buf[0], __ATOMIC_RELAXED);
	if (kcov_unlikely(
	        n >= __atomic_load_n(&d->lim_cmp, __ATOMIC_ACQUIRE))) {
		if (__atomic_load_n(&d->active, __ATOMIC_ACQUIRE) ==
		    KCOV_ACTIVE_CMP)
			d->dropped++;
		return 0;
	}
	rec = &buf[1 + 4 * n];
	rec[0] = type;
	rec[1] = arg1;
	rec[2] = arg2;
	rec[3] = pc;
	__atomic_store_n(&buf[0], n + 1, __ATOMIC_RELEASE);
	return 1;
}

/* Record a switch; see callbacks.c for the conventions of `cases`. */
void kcov_trace_switch(struct kcov_desc *d, uint64_t val, const uint64_t *cases,
    uint64_t pc);

#endif /* KCOV_ENGINE_H */
