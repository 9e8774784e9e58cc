// SPDX-License-Identifier: GPL-2.0
/*
 * kstressctl.ko - the negative control of tests/kstress.
 *
 * The stress suite declares a kernel clean when dmesg has no WARN, BUG,
 * Oops, KASAN or lockdep report and kmemleak lists nothing.  Those checks
 * only mean something if they can fail, so this module commits each bug on
 * demand, after the suite's own checks are done, in the same boot:
 *
 *   echo warn     > /sys/module/kstressctl/parameters/trigger   WARN_ON(1)
 *   echo lockdep  > ...   takes mutexes A then B, later B then A (lockdep:
 *                         possible circular locking dependency; no deadlock,
 *                         one task does both)
 *   echo sleep    > ...   might_sleep() under a spinlock (DEBUG_ATOMIC_SLEEP:
 *                         sleeping function called from invalid context)
 *   echo kasan    > ...   reads one byte past a 17-byte kmalloc (KASAN:
 *                         slab-out-of-bounds)
 *   echo leak     > ...   kmallocs KSTRESSCTL_LEAKS objects of 1337 bytes
 *                         holding "kstressctl leak" and drops the pointers
 *                         (kmemleak: unreferenced object ... size 1337)
 *
 * Order matters on a debug kernel: a lockdep report turns lockdep off, and
 * a KASAN report taints the kernel, which also turns lockdep off.
 */
#include <linux/bug.h>
#include <linux/compiler.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

#define KSTRESSCTL_LEAK_SIZE 1337
#define KSTRESSCTL_LEAKS 4

static DEFINE_MUTEX(kstressctl_a);
static DEFINE_MUTEX(kstressctl_b);
static DEFINE_SPINLOCK(kstressctl_spin);
static volatile int kstressctl_sink;

static noinline void
kstressctl_lockdep(void)
{
	mutex_lock(&kstressctl_a);
	mutex_lock(&kstressctl_b);
	mutex_unlock(&kstressctl_b);
	mutex_unlock(&kstressctl_a);

	mutex_lock(&kstressctl_b);
	mutex_lock(&kstressctl_a);
	mutex_unlock(&kstressctl_a);
	mutex_unlock(&kstressctl_b);
}

static noinline void
kstressctl_sleep(void)
{
	spin_lock(&kstressctl_spin);
	might_sleep();
	spin_unlock(&kstressctl_spin);
}

static noinline void
kstressctl_kasan(size_t past)
{
	char *p = kmalloc(17, GFP_KERNEL);

	if (p == NULL)
		return;
	OPTIMIZER_HIDE_VAR(p);
	kstressctl_sink = READ_ONCE(p[17 + past]);
	kfree(p);
}

static noinline void
kstressctl_leak(void)
{
	int i;

	for (i = 0; i < KSTRESSCTL_LEAKS; i++) {
		char *p = kmalloc(KSTRESSCTL_LEAK_SIZE, GFP_KERNEL);

		if (p == NULL)
			return;
		strscpy(p, "kstressctl leak", KSTRESSCTL_LEAK_SIZE);
		OPTIMIZER_HIDE_VAR(p);
		p = NULL;
	}
}

static int
kstressctl_trigger(const char *val, const struct kernel_param *kp)
{
	if (sysfs_streq(val, "warn"))
		WARN_ON(1);
	else if (sysfs_streq(val, "lockdep"))
		kstressctl_lockdep();
	else if (sysfs_streq(val, "sleep"))
		kstressctl_sleep();
	else if (sysfs_streq(val, "kasan"))
		kstressctl_kasan(0);
	else if (sysfs_streq(val, "leak"))
		kstressctl_leak();
	else
		return -EINVAL;
	pr_info("kstressctl: %.*s done\n", (int)strcspn(val, "\n"), val);
	return 0;
}

static const struct kernel_param_ops kstressctl_trigger_ops = {
	.set = kstressctl_trigger,
};
module_param_cb(trigger, &kstressctl_trigger_ops, NULL, 0200);
MODULE_PARM_DESC(trigger, "warn, lockdep, sleep, kasan or leak: commit that bug now");

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("tests/kstress negative control: deliberate WARN, lock inversion, "
    "sleep in atomic context, out-of-bounds read and leak");
