/*
 * abi_netbsd.c - the NetBSD front-end: the ioctls and mmap rules of
 * sys/kern/subr_kcov.c (bsd-kcov.md §2.2), over the engine's transitions
 * (abi.h).  Its command numbers are OpenBSD's too; kcov_ioctl() tells them
 * apart.
 */
#include "abi.h"

/* subr_kcov.c's kcov_fops_ioctl. */
KCOV_NOINSTR int
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
		if (mode != KCOV_BSD_MODE_NONE &&
		    mode != KCOV_BSD_MODE_TRACE_PC &&
		    mode != KCOV_BSD_MODE_TRACE_CMP)
			return K_EINVAL;
		if (d->state == KCOV_STATE_RUNNING)
			return K_EBUSY;
		if (td->desc != NULL)
			return K_EBUSY;
		if (d->state != KCOV_STATE_READY)
			return K_ENOBUFS;
		kcov_start_locked(d, td,
		    mode == KCOV_BSD_MODE_TRACE_PC      ? KCOV_TMODE_PC :
		        mode == KCOV_BSD_MODE_TRACE_CMP ? KCOV_TMODE_CMP :
		                                          KCOV_TMODE_NONE);
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

/* NetBSD's kcov_fops_mmap (bsd-kcov.md §2.2). */
KCOV_NOINSTR int
kcov_netbsd_mmap(const struct kcov_desc *d, const struct kcov_mmap_req *r,
    uint64_t *boff)
{
	if (r->prot_exec)
		return K_EACCES;
	if (r->off < 0)
		return K_EINVAL;
	if (r->len > KCOV_NETBSD_MAX_ENTRIES * 8 ||
	    (uint64_t)r->off > KCOV_NETBSD_MAX_ENTRIES * 8)
		return K_EINVAL;
	if (r->len + (uint64_t)r->off > d->bufsize)
		return K_ENOMEM;
	*boff = (uint64_t)r->off;
	return 0;
}
