/*
 * engine.c - the kcov descriptor state machine (include/kcovrt.h draws it).
 *
 * The ioctl entry point takes the descriptor lock and hands off to the
 * _locked worker of the ABI that owns the command (abi_*.c); the workers
 * move the descriptor only through the transitions here.  Close, thread
 * exit and introspection need no ABI.  Freestanding: no libc, no
 * allocation; the platform does the OS work (platform.h).
 */
#include "abi.h"
#include "platform.h"

KCOV_NOINSTR void
kcov_desc_init(struct kcov_desc *d)
{
	uint8_t *p = (uint8_t *)d;
	size_t i;

	for (i = 0; i < sizeof(*d); i++)
		p[i] = 0;
	d->state = KCOV_STATE_OPEN;
}

/* --- Transitions (called with the lock held) ----------------------------- */

/* Set `active` and the hot path's limits that go with it. */
static KCOV_NOINSTR void
kcov_set_active(struct kcov_desc *d, uint32_t active)
{
	if (active == KCOV_ACTIVE_OFF) {
		__atomic_store_n(&d->lim_pc, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&d->lim_cmp, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&d->active, active, __ATOMIC_RELEASE);
		return;
	}
	__atomic_store_n(&d->active, active, __ATOMIC_RELEASE);
	__atomic_store_n(&d->lim_pc, active == KCOV_ACTIVE_PC ? d->cap_pc : 0,
	    __ATOMIC_RELEASE);
	__atomic_store_n(&d->lim_cmp,
	    active == KCOV_ACTIVE_CMP ? d->cap_cmp : 0, __ATOMIC_RELEASE);
}

KCOV_NOINSTR void
kcov_start_locked(struct kcov_desc *d, struct kcov_thread *td, uint32_t tmode)
{
	kcov_plat_owner_set(&d->owner, td);
	d->mode = tmode;
	d->flags &= ~KCOV_FLAG_ORPHANED;
	d->generation++;
	__atomic_store_n(&d->state, KCOV_STATE_RUNNING, __ATOMIC_RELEASE);
	td->desc = d;
	/* Publish last: the hot path tests only the limits. */
	kcov_set_active(d, tmode + 1);
	kcov_plat_thread_bound(td);
}

/* RUNNING -> READY.  `td` is the owner's state when the caller has it. */
KCOV_NOINSTR void
kcov_stop_locked(struct kcov_desc *d, struct kcov_thread *td)
{
	kcov_set_active(d, KCOV_ACTIVE_OFF);
	__atomic_store_n(&d->state, KCOV_STATE_READY, __ATOMIC_RELEASE);
	if (td != NULL && td->desc == d)
		td->desc = NULL;
	d->flags &= ~KCOV_FLAG_ORPHANED;
	d->owner.pid = d->owner.tid = 0;
	d->owner.start = 0;
	d->owner.td = NULL;
}

/*
 * A hosted owner can vanish without running its exit hook (a forked child
 * that called _exit()).  Do its exit transition on its behalf, so the
 * descriptor is READY once the owner is gone, as FreeBSD's thread_dtor
 * makes it by the time the child is reaped.
 */
static KCOV_NOINSTR void
kcov_reap_locked(struct kcov_desc *d)
{
	if (d->owner.tid == 0 ||
	    (d->state != KCOV_STATE_RUNNING && d->state != KCOV_STATE_DYING))
		return;
	if (!kcov_plat_owner_gone(&d->owner))
		return;
	if (d->state == KCOV_STATE_RUNNING) {
		kcov_stop_locked(d, NULL);
	} else {
		kcov_set_active(d, KCOV_ACTIVE_OFF);
		d->owner.tid = 0;
		d->owner.td = NULL;
	}
}

KCOV_NOINSTR int
kcov_alloc_locked(struct kcov_desc *d, uint64_t n, uint32_t abi, void *pctx)
{
	uint64_t page = kcov_plat_pagesize();
	uint64_t bytes = (n * 8 + page - 1) & ~(page - 1);
	int error;

	error = kcov_plat_buf_alloc(d, bytes, pctx);
	if (error != 0)
		return error;
	d->entries = n;
	d->bufsize = bytes;
	d->cap_pc = n - 1;
	d->cap_cmp = (n - 1) / 4;
	d->abi = abi;
	d->mode = KCOV_TMODE_NONE;
	__atomic_store_n(&d->state, KCOV_STATE_READY, __ATOMIC_RELEASE);
	return 0;
}

KCOV_NOINSTR int
kcov_is_owner(const struct kcov_desc *d, const struct kcov_thread *td)
{
	return d->state == KCOV_STATE_RUNNING && td->desc == d &&
	    kcov_plat_owner_is_current(&d->owner, td);
}

/* --- Dispatch ------------------------------------------------------------ */

static KCOV_NOINSTR uint32_t
kcov_cmd_abi(unsigned long cmd, uint32_t dabi, int personality)
{
	switch (cmd) {
	case KCOV_FREEBSD_KIOSETBUFSIZE:
	case KCOV_FREEBSD_KIOENABLE:
	case KCOV_FREEBSD_KIODISABLE:
		return KCOV_ABI_FREEBSD;
	case KCOV_LINUX_INIT_TRACE:
	case KCOV_LINUX_ENABLE:
	case KCOV_LINUX_DISABLE:
	case KCOV_LINUX_REMOTE_ENABLE:
		return KCOV_ABI_LINUX;
	case KCOV_NETBSD_IOC_REMOTE_ATTACH:
	case KCOV_NETBSD_IOC_REMOTE_DETACH:
		return KCOV_ABI_NETBSD;
	case KCOV_OPENBSD_KIOREMOTEATTACH:
		return KCOV_ABI_OPENBSD;
	case KCOV_NETBSD_IOC_SETBUFSIZE:
	case KCOV_NETBSD_IOC_ENABLE:
	case KCOV_NETBSD_IOC_DISABLE:
		/* Shared by NetBSD and OpenBSD: the descriptor, then the device. */
		if (dabi == KCOV_ABI_NETBSD || dabi == KCOV_ABI_OPENBSD)
			return dabi;
		return personality == KCOV_ABI_OPENBSD ? KCOV_ABI_OPENBSD :
		                                         KCOV_ABI_NETBSD;
	}
	return KCOV_ABI_NONE;
}

/* Bytes a BSD 'K' command copies in before the driver runs (IOC_IN). */
static KCOV_NOINSTR size_t
kcov_bsd_argsize(unsigned long cmd)
{
	return (cmd & 0x80000000UL) ? (size_t)((cmd >> 16) & 0x1fff) : 0;
}

KCOV_NOINSTR int
kcov_ioctl(struct kcov_desc *d, struct kcov_thread *td, unsigned long cmd,
    uintptr_t arg, int personality, void *pctx)
{
	uint64_t argv[2] = { 0, 0 };
	uint32_t abi, dabi;
	size_t argsize;
	int error;

	dabi = __atomic_load_n(&d->abi, __ATOMIC_ACQUIRE);
	abi = kcov_cmd_abi(cmd, dabi, personality);
	if (abi == KCOV_ABI_NETBSD || abi == KCOV_ABI_OPENBSD) {
		/* The BSDs copy the argument in before the driver sees it. */
		argsize = kcov_bsd_argsize(cmd);
		if (argsize > sizeof(argv))
			argsize = sizeof(argv);
		if (argsize != 0 && kcov_plat_copyin(argv, arg, argsize) != 0)
			return K_EFAULT;
	}

	kcov_plat_lock(d);
	kcov_reap_locked(d);
	if (d->state == KCOV_STATE_DYING) {
		error = K_EBADF;
	} else if (abi == KCOV_ABI_NONE) {
		/* Unknown command: each kernel has its own answer. */
		switch (d->abi != KCOV_ABI_NONE ? (int)d->abi : personality) {
		case KCOV_ABI_LINUX:
		case KCOV_ABI_OPENBSD:
			error = K_ENOTTY;
			break;
		default:
			error = K_EINVAL;
			break;
		}
	} else if (d->abi != KCOV_ABI_NONE && d->abi != abi) {
		/* One descriptor speaks the ABI that sized it, no other. */
		error = K_ENOTTY;
	} else {
		switch (abi) {
		case KCOV_ABI_FREEBSD:
			error = kcov_freebsd_locked(d, td, cmd, arg, pctx);
			break;
		case KCOV_ABI_LINUX:
			error = kcov_linux_locked(d, td, cmd, arg, pctx);
			break;
		case KCOV_ABI_NETBSD:
			error = kcov_netbsd_locked(d, td, cmd, argv, pctx);
			break;
		default:
			error = kcov_openbsd_locked(d, td, cmd, argv, pctx);
			break;
		}
	}
	kcov_plat_unlock(d);
	return error;
}

/* --- mmap ---------------------------------------------------------------- */

KCOV_NOINSTR int
kcov_mmap_check(struct kcov_desc *d, int personality, uint64_t len,
    int prot_read, int prot_write, int prot_exec, int shared, int64_t off,
    uint64_t pagesize, uint64_t *boff)
{
	struct kcov_mmap_req r = {
		.len = len,
		.rlen = (len + pagesize - 1) & ~(pagesize - 1),
		.pagesize = pagesize,
		.off = off,
		.prot_read = prot_read,
		.prot_write = prot_write,
		.prot_exec = prot_exec,
		.shared = shared,
	};
	uint32_t abi = __atomic_load_n(&d->abi, __ATOMIC_ACQUIRE);

	r.sized = abi != KCOV_ABI_NONE;
	if (!r.sized)
		abi = (uint32_t)personality;

	*boff = 0;
	if (len == 0)
		return K_EINVAL;
	/* The rules of the ABI that sized `d`, else of the device. */
	switch (abi) {
	case KCOV_ABI_NETBSD:
		return kcov_netbsd_mmap(d, &r, boff);
	case KCOV_ABI_OPENBSD:
		return kcov_openbsd_mmap(d, &r, boff);
	case KCOV_ABI_LINUX:
		return kcov_linux_mmap(d, &r, boff);
	default:
		return kcov_freebsd_mmap(d, &r, boff);
	}
}

/* --- Close and thread exit ----------------------------------------------- */

KCOV_NOINSTR int
kcov_close(struct kcov_desc *d)
{
	int free_now = 1;

	kcov_plat_lock(d);
	kcov_reap_locked(d);
	if (d->state == KCOV_STATE_RUNNING) {
		/* The owner still points here: the free waits for its exit. */
		free_now = 0;
		if (d->abi == KCOV_ABI_LINUX || d->abi == KCOV_ABI_NETBSD)
			d->flags |= KCOV_FLAG_ORPHANED;
		else
			kcov_set_active(d, KCOV_ACTIVE_OFF);
	} else if (d->state == KCOV_STATE_DYING) {
		/* A second last-close race: the first one owns the free. */
		free_now = 0;
	}
	__atomic_store_n(&d->state, KCOV_STATE_DYING, __ATOMIC_SEQ_CST);
	kcov_plat_unlock(d);
	return free_now;
}

KCOV_NOINSTR struct kcov_desc *
kcov_thread_exit(struct kcov_thread *td)
{
	struct kcov_desc *d = td->desc;
	struct kcov_desc *dead = NULL;

	if (d == NULL)
		return NULL;
	kcov_plat_lock(d);
	if (d->state == KCOV_STATE_DYING) {
		kcov_set_active(d, KCOV_ACTIVE_OFF);
		d->owner.tid = 0;
		d->owner.td = NULL;
		dead = d;
	} else if (d->state == KCOV_STATE_RUNNING) {
		kcov_stop_locked(d, td);
	}
	td->desc = NULL;
	kcov_plat_unlock(d);
	return dead;
}

/* --- Introspection ------------------------------------------------------- */

KCOV_NOINSTR void
kcov_desc_info(struct kcov_desc *d, struct kcov_desc_info *out)
{
	kcov_plat_lock(d);
	kcov_reap_locked(d);
	out->state = d->state;
	out->abi = d->abi;
	out->mode = d->mode;
	out->active = d->active;
	out->flags = d->flags;
	out->entries = d->entries;
	out->bufsize = d->bufsize;
	out->capacity = d->mode == KCOV_TMODE_CMP ? d->cap_cmp : d->cap_pc;
	out->dropped = __atomic_load_n(&d->dropped, __ATOMIC_RELAXED);
	out->count = d->kbuf != NULL ?
	    __atomic_load_n(&d->kbuf[0], __ATOMIC_RELAXED) :
	    0;
	out->owner_tid = d->owner.tid;
	kcov_plat_unlock(d);
}

KCOV_NOINSTR void
kcov_reset(struct kcov_desc *d)
{
	if (d->kbuf != NULL)
		__atomic_store_n(&d->kbuf[0], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&d->dropped, 0, __ATOMIC_RELAXED);
}

/* --- Switch records ------------------------------------------------------ */

/*
 * cases[0] is the number of case values, cases[1] the operand width in bits,
 * cases[2..] the values.  Clang zero-extends the operand and the values;
 * GCC sign-extends signed ones (spec llvm-profile-sancov.md §3.4), so both
 * are cut to the operand width here and every record carries zero-extended
 * operands whichever compiler built the code.  Widths other than 8, 16, 32
 * and 64 record nothing, as in every reference kernel.
 *
 * A descriptor sized through the FreeBSD ABI gets FreeBSD's records:
 * type = SIZE only, arg1 = val | COV_CMP_CONST, arg2 = the case, stopping
 * at the first dropped record (subr_coverage.c).  Every other ABI gets
 * type = SIZE | CONST, arg1 = the case, arg2 = the value, for every case.
 */
KCOV_NOINSTR void
kcov_trace_switch(struct kcov_desc *d, uint64_t val, const uint64_t *cases,
    uint64_t pc)
{
	uint64_t i, n, mask, type;

	if (__atomic_load_n(&d->active, __ATOMIC_ACQUIRE) != KCOV_ACTIVE_CMP)
		return;
	n = cases[0];
	switch (cases[1]) {
	case 8:
		type = KCOV_CMP_SIZE_BITS(0);
		mask = 0xffULL;
		break;
	case 16:
		type = KCOV_CMP_SIZE_BITS(1);
		mask = 0xffffULL;
		break;
	case 32:
		type = KCOV_CMP_SIZE_BITS(2);
		mask = 0xffffffffULL;
		break;
	case 64:
		type = KCOV_CMP_SIZE_BITS(3);
		mask = ~0ULL;
		break;
	default:
		return;
	}
	val &= mask;
	if (d->abi == KCOV_ABI_FREEBSD) {
		for (i = 0; i < n; i++)
			if (!kcov_trace_cmp(d, type, val | KCOV_CMP_CONST_BIT,
			        cases[i + 2] & mask, pc))
				break;
	} else {
		for (i = 0; i < n; i++)
			kcov_trace_cmp(d, type | KCOV_CMP_CONST_BIT,
			    cases[i + 2] & mask, val, pc);
	}
}
