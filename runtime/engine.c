/*
 * engine.c - the kcov descriptor state machine and the four ABI front-ends.
 *
 * The ioctl entry point takes the descriptor lock and hands off to one
 * _locked worker per ABI.  Each worker checks state first, then arguments,
 * in the order and with the errno values of its reference kernel (see
 * ../shared/spec: bsd-kcov.md §1.6, §2.2, §3.2 and linux-kcov.md §2.3).
 * Freestanding: no libc, no allocation; the platform does the OS work.
 */
#include "engine.h"
#include "platform.h"

/* errno values, so the engine needs no libc header (Linux/x86 numbering). */
#define K_EPERM   1
#define K_ENXIO   6
#define K_EBADF   9
#define K_ENOMEM  12
#define K_EACCES  13
#define K_EFAULT  14
#define K_EBUSY   16
#define K_EEXIST  17
#define K_EINVAL  22
#define K_ENOTTY  25
#define K_ENOENT  2
#define K_ENOBUFS 105
#define K_EOPNOTSUPP 95

uint64_t kcov_max_entries = KCOV_FREEBSD_MAXENTRIES;

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
	__atomic_store_n(&d->lim_pc,
	    active == KCOV_ACTIVE_PC ? d->cap_pc : 0, __ATOMIC_RELEASE);
	__atomic_store_n(&d->lim_cmp,
	    active == KCOV_ACTIVE_CMP ? d->cap_cmp : 0, __ATOMIC_RELEASE);
}

static KCOV_NOINSTR void
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
static KCOV_NOINSTR void
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

static KCOV_NOINSTR int
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

static KCOV_NOINSTR int
kcov_is_owner(const struct kcov_desc *d, const struct kcov_thread *td)
{
	return d->state == KCOV_STATE_RUNNING && td->desc == d &&
	    kcov_plat_owner_is_current(&d->owner, td);
}

/* --- FreeBSD (bsd-kcov.md §1.6) ------------------------------------------ */

static KCOV_NOINSTR int
kcov_freebsd_locked(struct kcov_desc *d, struct kcov_thread *td,
    unsigned long cmd, uintptr_t arg, void *pctx)
{
	uint32_t n;
	int mode;

	switch (cmd) {
	case KCOV_FREEBSD_KIOSETBUFSIZE:
		/* sys_ioctl passes the int by value; the driver reads a u_int. */
		n = (uint32_t)arg;
		if (d->state != KCOV_STATE_OPEN)
			return K_EBUSY;
		if (n < 2 || n > kcov_max_entries)
			return K_EINVAL;
		return kcov_alloc_locked(d, n, KCOV_ABI_FREEBSD, pctx);
	case KCOV_FREEBSD_KIOENABLE:
		mode = (int)arg;
		if (d->state != KCOV_STATE_READY)
			return K_EBUSY;
		if (td->desc != NULL)
			return K_EINVAL;
		if (mode != KCOV_FREEBSD_MODE_TRACE_PC &&
		    mode != KCOV_FREEBSD_MODE_TRACE_CMP)
			return K_EINVAL;
		kcov_start_locked(d, td, mode == KCOV_FREEBSD_MODE_TRACE_PC ?
		    KCOV_TMODE_PC : KCOV_TMODE_CMP);
		return 0;
	case KCOV_FREEBSD_KIODISABLE:
		if (!kcov_is_owner(d, td))
			return K_EINVAL;
		kcov_stop_locked(d, td);
		return 0;
	}
	return K_EINVAL;
}

/* --- Linux (linux-kcov.md §2.3) ------------------------------------------ */

static KCOV_NOINSTR int
kcov_linux_locked(struct kcov_desc *d, struct kcov_thread *td,
    unsigned long cmd, uintptr_t arg, void *pctx)
{
	uint32_t hdr[3];

	switch (cmd) {
	case KCOV_LINUX_INIT_TRACE:
		/*
		 * Linux allocates before it looks at the state, so ENOMEM can
		 * win over EBUSY there; here EBUSY is checked first, which
		 * differs only when both apply.
		 */
		if (arg < 2 || arg > 0x7fffffffUL / 8)
			return K_EINVAL;
		if (d->state != KCOV_STATE_OPEN)
			return K_EBUSY;
		return kcov_alloc_locked(d, arg, KCOV_ABI_LINUX, pctx);
	case KCOV_LINUX_ENABLE:
		if (d->state != KCOV_STATE_READY)
			return K_EINVAL;
		if (d->owner.tid != 0 || td->desc != NULL)
			return K_EBUSY;
		if (arg != KCOV_LINUX_TRACE_PC && arg != KCOV_LINUX_TRACE_CMP)
			return K_EINVAL;
		kcov_start_locked(d, td, arg == KCOV_LINUX_TRACE_PC ?
		    KCOV_TMODE_PC : KCOV_TMODE_CMP);
		return 0;
	case KCOV_LINUX_DISABLE:
		if (arg != 0 || td->desc != d || !kcov_is_owner(d, td))
			return K_EINVAL;
		kcov_stop_locked(d, td);
		return 0;
	case KCOV_LINUX_REMOTE_ENABLE:
		/*
		 * Argument checks as Linux does them; a hosted process has no
		 * kernel threads or softirqs to collect from, so a well-formed
		 * request is refused as unsupported.
		 */
		if (kcov_plat_copyin(hdr, arg, sizeof(hdr)) != 0)
			return K_EFAULT;
		if (hdr[2] > 0x100)
			return K_EINVAL;
		if (d->state != KCOV_STATE_READY)
			return K_EINVAL;
		if (d->owner.tid != 0 || td->desc != NULL)
			return K_EBUSY;
		if (hdr[0] != KCOV_LINUX_TRACE_PC && hdr[0] != KCOV_LINUX_TRACE_CMP)
			return K_EINVAL;
		return KCOV_LINUX_ENOTSUPP;
	}
	return K_ENOTTY;
}

/* --- NetBSD (bsd-kcov.md §2.2) ------------------------------------------- */

static KCOV_NOINSTR int
kcov_netbsd_locked(struct kcov_desc *d, struct kcov_thread *td,
    unsigned long cmd, const uint64_t *argv, void *pctx)
{
	int mode;

	switch (cmd) {
	case KCOV_NETBSD_IOC_SETBUFSIZE:
		if (d->state == KCOV_STATE_RUNNING)
			return K_EBUSY;
		if (argv[0] < 2 || argv[0] > KCOV_NETBSD_MAX_ENTRIES)
			return K_EINVAL;
		if (d->state != KCOV_STATE_OPEN)
			return K_EEXIST;
		return kcov_alloc_locked(d, argv[0], KCOV_ABI_NETBSD, pctx);
	case KCOV_NETBSD_IOC_ENABLE:
		mode = (int)(uint32_t)argv[0];
		if (mode != KCOV_BSD_MODE_NONE && mode != KCOV_BSD_MODE_TRACE_PC &&
		    mode != KCOV_BSD_MODE_TRACE_CMP)
			return K_EINVAL;
		if (d->state == KCOV_STATE_RUNNING)
			return K_EBUSY;
		if (td->desc != NULL)
			return K_EBUSY;
		if (d->state != KCOV_STATE_READY)
			return K_ENOBUFS;
		kcov_start_locked(d, td, mode == KCOV_BSD_MODE_TRACE_PC ?
		    KCOV_TMODE_PC : mode == KCOV_BSD_MODE_TRACE_CMP ?
		    KCOV_TMODE_CMP : KCOV_TMODE_NONE);
		return 0;
	case KCOV_NETBSD_IOC_DISABLE:
		if (!kcov_is_owner(d, td))
			return K_ENOENT;
		kcov_stop_locked(d, td);
		return 0;
	case KCOV_NETBSD_IOC_REMOTE_ATTACH:
		/* No remote sources are ever registered in a hosted process. */
		if (d->state == KCOV_STATE_RUNNING)
			return K_EEXIST;
		return K_ENOENT;
	case KCOV_NETBSD_IOC_REMOTE_DETACH:
		if (d->state == KCOV_STATE_RUNNING)
			return K_EEXIST;
		return K_ENOENT;
	}
	return K_EINVAL;
}

/* --- OpenBSD (bsd-kcov.md §3.2) ------------------------------------------ */

static KCOV_NOINSTR int
kcov_openbsd_locked(struct kcov_desc *d, struct kcov_thread *td,
    unsigned long cmd, const uint64_t *argv, void *pctx)
{
	int mode;

	switch (cmd) {
	case KCOV_OPENBSD_KIOSETBUFSIZE:
		if (d->state != KCOV_STATE_OPEN)
			return K_EBUSY;
		if (argv[0] == 0 || argv[0] > KCOV_OPENBSD_BUF_MAX_NMEMB)
			return K_EINVAL;
		return kcov_alloc_locked(d, argv[0], KCOV_ABI_OPENBSD, pctx);
	case KCOV_OPENBSD_KIOENABLE:
		mode = (int)(uint32_t)argv[0];
		if (td->desc != NULL)
			return K_EBUSY;
		if (d->state != KCOV_STATE_READY)
			return K_ENXIO;
		if (mode != KCOV_BSD_MODE_TRACE_PC && mode != KCOV_BSD_MODE_TRACE_CMP)
			return K_EINVAL;
		kcov_start_locked(d, td, mode == KCOV_BSD_MODE_TRACE_PC ?
		    KCOV_TMODE_PC : KCOV_TMODE_CMP);
		return 0;
	case KCOV_OPENBSD_KIODISABLE:
		if (td->desc != d)
			return K_EPERM;
		if (d->state != KCOV_STATE_RUNNING)
			return K_ENXIO;
		kcov_stop_locked(d, td);
		return 0;
	case KCOV_OPENBSD_KIOREMOTEATTACH:
		/* struct kio_remote_attach { int subsystem; int id; } */
		if (d->state != KCOV_STATE_READY)
			return K_ENXIO;
		if ((uint32_t)argv[0] != 0)
			return K_EINVAL;
		/* COMMON collects from kernel tasks, which a process has none of. */
		return K_EOPNOTSUPP;
	}
	return K_ENOTTY;
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
	uint64_t rlen = (len + pagesize - 1) & ~(pagesize - 1);
	uint32_t abi = __atomic_load_n(&d->abi, __ATOMIC_ACQUIRE);
	int sized = abi != KCOV_ABI_NONE;

	if (!sized)
		abi = (uint32_t)personality;

	*boff = 0;
	if (len == 0)
		return K_EINVAL;
	switch (abi) {
	case KCOV_ABI_NETBSD:
		/* NetBSD's kcov_fops_mmap (bsd-kcov.md §2.2). */
		if (prot_exec)
			return K_EACCES;
		if (off < 0)
			return K_EINVAL;
		if (len > KCOV_NETBSD_MAX_ENTRIES * 8 ||
		    (uint64_t)off > KCOV_NETBSD_MAX_ENTRIES * 8)
			return K_EINVAL;
		if (len + (uint64_t)off > d->bufsize)
			return K_ENOMEM;
		*boff = (uint64_t)off;
		return 0;
	case KCOV_ABI_OPENBSD:
		/* d_mmap is asked per page: each must lie below nmemb words. */
		if (!sized || off < 0 ||
		    (uint64_t)off + rlen - pagesize >= (d->entries - 1) * 8)
			return K_EINVAL;
		*boff = (uint64_t)off;
		return 0;
	case KCOV_ABI_LINUX:
		/* kcov_mmap: an area, offset 0 and the exact (page) length. */
		if (!sized || off != 0 || rlen != d->entries * 8)
			return K_EINVAL;
		return 0;
	default:
		/*
		 * FreeBSD: vm_mmap_cdev wants MAP_SHARED, kcov_mmap_single
		 * exactly READ|WRITE, a buffer, and the page-rounded length
		 * equal to entries * 8.  The offset is ignored.
		 */
		if (!shared || !prot_read || !prot_write || prot_exec || !sized)
			return K_EINVAL;
		if (rlen / 8 != d->entries)
			return K_EINVAL;
		return 0;
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
	    __atomic_load_n(&d->kbuf[0], __ATOMIC_RELAXED) : 0;
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
