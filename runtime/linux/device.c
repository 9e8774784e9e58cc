// SPDX-License-Identifier: GPL-2.0
/*
 * device.c - kcov.ko: the kcov engine as a Linux kernel module.
 *
 * The kernel counterpart of ../hosted/device.c.  One misc device,
 * /dev/kcov (root only, 0600), answers the FreeBSD, Linux, NetBSD and
 * OpenBSD ioctls through the engine, with the hosted device's personality
 * rules: /dev/kcov has the personality named by the module parameter
 * `bsd_abi` (freebsd by default, or netbsd / openbsd; read at each open, so
 * it can be changed at run time through /sys/module/kcov/parameters), which
 * decides NetBSD vs OpenBSD for the command numbers they share (NetBSD for
 * a freebsd personality), the errno of unknown commands and the mmap rules
 * before sizing.  When debugfs has no `kcov` (the stock kernel has no
 * CONFIG_KCOV), the module also creates /sys/kernel/debug/kcov, 0600, with
 * the Linux personality, so Linux clients run unchanged.
 *
 * mmap.  The buffer is vmalloc_user() memory and is mapped page by page
 * (remap_vmalloc_range: VM_DONTEXPAND | VM_DONTDUMP, nothing outside the
 * buffer's pages).  The kernel records through its own vmalloc mapping, so
 * a user mprotect(PROT_READ) of the mapping does not stop recording.  The
 * mapping's file is switched to an anonymous file that owns the buffer
 * (vma_set_file), so mappings do not keep the kcov file open: its last
 * close runs the engine's close at once, as FreeBSD's cdevpriv destructor
 * does (close while RUNNING stops a FreeBSD or OpenBSD descriptor), while
 * the mappings keep the buffer alive until they go.
 *
 * The module itself is never instrumented: kbuild adds no coverage flags
 * when the kernel has no CONFIG_KCOV, and the engine and callbacks carry
 * KCOV_NOINSTR (kcov/noinstr.h: no_sanitize_coverage, no_instrument_function
 * = notrace, no profiling, no sanitizers).
 */
#include <linux/debugfs.h>
#include <linux/export.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/vmalloc.h>

#include "engine.h"
#include "kcov_linux.h"
#include "kprofile.h"

/* --- Module parameters ----------------------------------------------------- */

static int kcov_bsd_personality = KCOV_ABI_FREEBSD;

static const char *const kcov_abi_names[] = {
	[KCOV_ABI_FREEBSD] = "freebsd",
	[KCOV_ABI_NETBSD] = "netbsd",
	[KCOV_ABI_OPENBSD] = "openbsd",
};

static int
bsd_abi_set(const char *val, const struct kernel_param *kp)
{
	static const int abis[] = { KCOV_ABI_FREEBSD, KCOV_ABI_NETBSD,
		KCOV_ABI_OPENBSD };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(abis); i++) {
		if (sysfs_streq(val, kcov_abi_names[abis[i]])) {
			WRITE_ONCE(kcov_bsd_personality, abis[i]);
			return 0;
		}
	}
	return -EINVAL;
}

static int
bsd_abi_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%s\n",
	    kcov_abi_names[READ_ONCE(kcov_bsd_personality)]);
}

static const struct kernel_param_ops bsd_abi_ops = {
	.set = bsd_abi_set,
	.get = bsd_abi_get,
};
module_param_cb(bsd_abi, &bsd_abi_ops, NULL, 0644);
MODULE_PARM_DESC(bsd_abi,
    "personality of /dev/kcov: freebsd (default; "
    "shared BSD commands are NetBSD's), netbsd or openbsd");

module_param_named(max_entries, kcov_max_entries, ullong, 0644);
MODULE_PARM_DESC(max_entries, "FreeBSD's kern.kcov.max_entries");

static bool kcov_want_debugfs = true;
module_param_named(debugfs, kcov_want_debugfs, bool, 0444);
MODULE_PARM_DESC(debugfs,
    "create /sys/kernel/debug/kcov (Linux ABI) when "
    "debugfs has none (default true)");

/* Read-only counters, for leak checks. */
static int
kcov_stat_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%d\n", atomic_read(kp->arg));
}

static const struct kernel_param_ops kcov_stat_ops = {
	.get = kcov_stat_get,
};
module_param_cb(live_descriptors, &kcov_stat_ops, &kcov_live_descs, 0444);
module_param_cb(live_tasks, &kcov_stat_ops, &kcov_live_tasks, 0444);
module_param_cb(live_buffers, &kcov_stat_ops, &kcov_live_bufs, 0444);

/* --- File operations ------------------------------------------------------- */

static int
kcov_open_as(struct inode *inode, struct file *f, int personality)
{
	struct kcov_file *kf;

	kf = kzalloc(sizeof(*kf), GFP_KERNEL);
	if (kf == NULL)
		return -ENOMEM;
	kcov_desc_init(&kf->desc);
	mutex_init(&kf->lock);
	kf->personality = personality;
	atomic_inc(&kcov_live_descs);
	f->private_data = kf;
	return nonseekable_open(inode, f);
}

static int
kcov_open_bsd(struct inode *inode, struct file *f)
{
	return kcov_open_as(inode, f, READ_ONCE(kcov_bsd_personality));
}

static int
kcov_open_linux(struct inode *inode, struct file *f)
{
	return kcov_open_as(inode, f, KCOV_ABI_LINUX);
}

static int
kcov_release(struct inode *inode, struct file *f)
{
	struct kcov_file *kf = f->private_data;

	if (kcov_close(&kf->desc))
		kcov_file_free(kf);
	return 0;
}

static long
kcov_dev_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	struct kcov_file *kf = f->private_data;
	struct kcov_task *kt;
	int err;

	kcov_flush_exits();
	kt = kcov_task_get();
	if (kt == NULL)
		return -ENOMEM;
	err = kcov_ioctl(&kf->desc, &kt->td, cmd, arg, kf->personality, kf);
	kcov_task_settle(kt);
	return -err;
}

/*
 * No descriptor lock here: mmap runs under mmap_lock, and the lock is held
 * across copy_from_user (Linux's REMOTE_ENABLE), whose fault takes
 * mmap_lock.  The buffer file is published (release) after the buffer is
 * complete, and the bounds are checked against the buffer itself, so a
 * mapping racing the sizing ioctl can fail but never map anything else.
 */
static int
kcov_dev_mmap(struct file *f, struct vm_area_struct *vma)
{
	struct kcov_file *kf = f->private_data;
	struct file *bf = smp_load_acquire(&kf->bfile);
	unsigned long len = vma->vm_end - vma->vm_start;
	struct kcov_buf *b;
	uint64_t boff;
	int err;

	err = kcov_mmap_check(&kf->desc, kf->personality, len,
	    (vma->vm_flags & VM_READ) != 0, (vma->vm_flags & VM_WRITE) != 0,
	    (vma->vm_flags & VM_EXEC) != 0, (vma->vm_flags & VM_MAYSHARE) != 0,
	    (int64_t)(vma->vm_pgoff << PAGE_SHIFT), PAGE_SIZE, &boff);
	if (err != 0)
		return -err;
	if (bf == NULL)
		return -EINVAL;
	b = bf->private_data;
	if (!PAGE_ALIGNED(boff) || boff > b->size || len > b->size - boff)
		return -EINVAL;
	err = remap_vmalloc_range(vma, b->area, boff >> PAGE_SHIFT);
	if (err != 0)
		return err;
	vma_set_file(vma, bf);
	return 0;
}

static const struct file_operations kcov_bsd_fops = {
	.owner = THIS_MODULE,
	.open = kcov_open_bsd,
	.release = kcov_release,
	.unlocked_ioctl = kcov_dev_ioctl,
	.compat_ioctl = kcov_dev_ioctl,
	.mmap = kcov_dev_mmap,
	.llseek = no_llseek,
};

static const struct file_operations kcov_linux_fops = {
	.owner = THIS_MODULE,
	.open = kcov_open_linux,
	.release = kcov_release,
	.unlocked_ioctl = kcov_dev_ioctl,
	.compat_ioctl = kcov_dev_ioctl,
	.mmap = kcov_dev_mmap,
	.llseek = no_llseek,
};

static struct miscdevice kcov_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kcov",
	.fops = &kcov_bsd_fops,
	.mode = 0600,
};

static struct dentry *kcov_dbg;

/* --- SanitizerCoverage entry points (callbacks.c, fpcmp.c) ------------------- */

void __sanitizer_cov_trace_pc(void);
void __sanitizer_cov_trace_cmp1(u8 a, u8 b);
void __sanitizer_cov_trace_cmp2(u16 a, u16 b);
void __sanitizer_cov_trace_cmp4(u32 a, u32 b);
void __sanitizer_cov_trace_cmp8(u64 a, u64 b);
void __sanitizer_cov_trace_const_cmp1(u8 a, u8 b);
void __sanitizer_cov_trace_const_cmp2(u16 a, u16 b);
void __sanitizer_cov_trace_const_cmp4(u32 a, u32 b);
void __sanitizer_cov_trace_const_cmp8(u64 a, u64 b);
void __sanitizer_cov_trace_switch(u64 val, u64 *cases);

EXPORT_SYMBOL(__sanitizer_cov_trace_pc);
EXPORT_SYMBOL(__sanitizer_cov_trace_cmp1);
EXPORT_SYMBOL(__sanitizer_cov_trace_cmp2);
EXPORT_SYMBOL(__sanitizer_cov_trace_cmp4);
EXPORT_SYMBOL(__sanitizer_cov_trace_cmp8);
EXPORT_SYMBOL(__sanitizer_cov_trace_const_cmp1);
EXPORT_SYMBOL(__sanitizer_cov_trace_const_cmp2);
EXPORT_SYMBOL(__sanitizer_cov_trace_const_cmp4);
EXPORT_SYMBOL(__sanitizer_cov_trace_const_cmp8);
EXPORT_SYMBOL(__sanitizer_cov_trace_switch);

/* --- Module init and exit ---------------------------------------------------- */

static void
kcov_debugfs_init(void)
{
	struct dentry *e;

	if (!kcov_want_debugfs || !debugfs_initialized())
		return;
	e = debugfs_lookup("kcov", NULL);
	if (e != NULL) {
		/* The kernel's own kcov (or another module's) is there. */
		dput(e);
		return;
	}
	kcov_dbg = debugfs_create_file_unsafe("kcov", 0600, NULL, NULL,
	    &kcov_linux_fops);
	if (IS_ERR(kcov_dbg))
		kcov_dbg = NULL;
}

static int __init
kcov_module_init(void)
{
	int err;

	err = kcov_linux_init();
	if (err != 0)
		return err;
	err = misc_register(&kcov_misc);
	if (err != 0) {
		kcov_linux_exit();
		return err;
	}
	kcov_debugfs_init();
	err = kcov_profile_init();
	if (err != 0) {
		debugfs_remove(kcov_dbg);
		misc_deregister(&kcov_misc);
		kcov_linux_exit();
		return err;
	}
	pr_info("kcov: /dev/kcov (%s)%s ready\n",
	    kcov_abi_names[READ_ONCE(kcov_bsd_personality)],
	    kcov_dbg != NULL ? " and /sys/kernel/debug/kcov" : "");
	return 0;
}

static void __exit
kcov_module_exit(void)
{
	kcov_profile_exit();
	debugfs_remove(kcov_dbg);
	misc_deregister(&kcov_misc);
	kcov_linux_exit();
}

module_init(kcov_module_init);
module_exit(kcov_module_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kcov for kernels without CONFIG_KCOV: FreeBSD, Linux, "
                   "NetBSD and OpenBSD kcov ABIs for instrumented modules");
