/*
 * abi_freebsd.c - the FreeBSD front-end: the ioctls and mmap rules of
 * sys/kern/kern_kcov.c (bsd-kcov.md §1.6), over the engine's transitions
 * (abi.h).
 */
#include "abi.h"

/* Tunable upper bound for KIOSETBUFSIZE (kern.kcov.max_entries). */
uint64_t kcov_max_entries = KCOV_FREEBSD_MAXENTRIES;

/* kern_kcov.c's kcov_ioctl. */
KCOV_NOINSTR int
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
		kcov_start_locked(d, td,
		    mode == KCOV_FREEBSD_MODE_TRACE_PC ? KCOV_TMODE_PC :
		                                         KCOV_TMODE_CMP);
		return 0;
	case KCOV_FREEBSD_KIODISABLE:
		if (!kcov_is_owner(d, td))
			return K_EINVAL;
		kcov_stop_locked(d, td);
		return 0;
	}
	return K_EINVAL;
}

/*
 * vm_mmap_cdev wants MAP_SHARED, kcov_mmap_single exactly READ|WRITE, a
 * buffer, and the page-rounded length equal to entries * 8.  The offset is
 * ignored.
 */
KCOV_NOINSTR int
kcov_freebsd_mmap(const struct kcov_desc *d, const struct kcov_mmap_req *r,
    uint64_t *boff)
{
	if (!r->shared || !r->prot_read || !r->prot_write || r->prot_exec ||
	    !r->sized)
		return K_EINVAL;
	if (r->rlen / 8 != d->entries)
		return K_EINVAL;
	return 0;
}
