/*
 * abi_openbsd.c - the OpenBSD front-end: the ioctls and mmap rules of
 * sys/dev/kcov.c (bsd-kcov.md §3.2), over the engine's transitions
 * (abi.h).  Its command numbers are NetBSD's too; kcov_ioctl() tells them
 * apart.
 */
#include "abi.h"

/* dev/kcov.c's kcovioctl. */
KCOV_NOINSTR int
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
		if (mode != KCOV_BSD_MODE_TRACE_PC &&
		    mode != KCOV_BSD_MODE_TRACE_CMP)
			return K_EINVAL;
		kcov_start_locked(d, td,
		    mode == KCOV_BSD_MODE_TRACE_PC ? KCOV_TMODE_PC :
		                                     KCOV_TMODE_CMP);
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

/* d_mmap is asked per page: each must lie below nmemb words. */
KCOV_NOINSTR int
kcov_openbsd_mmap(const struct kcov_desc *d, const struct kcov_mmap_req *r,
    uint64_t *boff)
{
	if (!r->sized || r->off < 0 ||
	    (uint64_t)r->off + r->rlen - r->pagesize >= (d->entries - 1) * 8)
		return K_EINVAL;
	*boff = (uint64_t)r->off;
	return 0;
}
