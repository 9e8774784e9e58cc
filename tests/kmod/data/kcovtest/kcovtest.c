// SPDX-License-Identifier: GPL-2.0
/*
 * kcovtest.ko - kernel code for kcov.ko's tests to cover.
 *
 * /dev/kcovtest (root only) takes writes:
 *   a number (strtoull base 0)  -> kcovtest_classify(): compares against
 *                                  0xC0FFEE and 1000000, switches on 7/42/1234
 *   "abc...", "x...", other     -> kcovtest_word(): per-character branches
 *   "irq"                       -> runs kcovtest_irq_work() from a hard-IRQ
 *                                  hrtimer and a softirq timer on top of the
 *                                  writing task (preemption off, busy wait),
 *                                  so kcov must record none of it
 * and reads back "classify=<r> word=<r> hard=<n> soft=<n>".
 * Built with trace-pc and trace-cmp, its callbacks resolve to kcov.ko.
 */
#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/timer.h>
#include <linux/uaccess.h>

static int last_classify, last_word;
static atomic_t hard_runs, soft_runs;
static volatile int irq_sink;

static noinline int
kcovtest_classify(u64 v)
{
	int r = 0;

	if (v == 0xC0FFEE)
		r += 100;
	else if (v > 1000000)
		r += 10;
	switch (v) {
	case 7:
		r += 7;
		break;
	case 42:
		r += 42;
		break;
	case 1234:
		r += 1;
		break;
	default:
		break;
	}
	return r;
}

static noinline int
kcovtest_word(const char *s, size_t n)
{
	if (n >= 3 && s[0] == 'a' && s[1] == 'b' && s[2] == 'c')
		return 3;
	if (n >= 1 && s[0] == 'x')
		return 1;
	return 0;
}

/* Instrumented code that only ever runs in interrupt context. */
static noinline void
kcovtest_irq_work(int v)
{
	if (v > 3)
		irq_sink += v;
	else
		irq_sink -= v;
}

static struct hrtimer kt_hrtimer;
static struct timer_list kt_timer;

static enum hrtimer_restart
kcovtest_hard_fn(struct hrtimer *t)
{
	kcovtest_irq_work(5);
	atomic_inc(&hard_runs);
	return HRTIMER_NORESTART;
}

static void
kcovtest_soft_fn(struct timer_list *t)
{
	kcovtest_irq_work(1);
	atomic_inc(&soft_runs);
}

/* Fire both timers on this CPU while this task keeps running on it. */
static void
kcovtest_irq(void)
{
	int hard = atomic_read(&hard_runs), soft = atomic_read(&soft_runs);
	int i;

	preempt_disable();
	hrtimer_start(&kt_hrtimer, ms_to_ktime(1), HRTIMER_MODE_REL_PINNED_HARD);
	kt_timer.expires = jiffies + 1;
	add_timer_on(&kt_timer, smp_processor_id());
	for (i = 0; i < 2000; i++) {
		if (atomic_read(&hard_runs) != hard && atomic_read(&soft_runs) != soft)
			break;
		udelay(500);
	}
	preempt_enable();
}

static ssize_t
kcovtest_write(struct file *f, const char __user *ubuf, size_t len,
	       loff_t *ppos)
{
	char buf[32];
	size_t n = min(len, sizeof(buf) - 1);
	u64 v;

	if (copy_from_user(buf, ubuf, n))
		return -EFAULT;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (strcmp(buf, "irq") == 0)
		kcovtest_irq();
	else if (kstrtou64(buf, 0, &v) == 0)
		last_classify = kcovtest_classify(v);
	else
		last_word = kcovtest_word(buf, n);
	return len;
}

static ssize_t
kcovtest_read(struct file *f, char __user *ubuf, size_t len, loff_t *ppos)
{
	char buf[96];
	int n = scnprintf(buf, sizeof(buf), "classify=%d word=%d hard=%d soft=%d\n",
			  last_classify, last_word, atomic_read(&hard_runs),
			  atomic_read(&soft_runs));

	return simple_read_from_buffer(ubuf, len, ppos, buf, n);
}

static const struct file_operations kcovtest_fops = {
	.owner = THIS_MODULE,
	.write = kcovtest_write,
	.read = kcovtest_read,
	.llseek = no_llseek,
};

static struct miscdevice kcovtest_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kcovtest",
	.fops = &kcovtest_fops,
	.mode = 0600,
};

static int __init
kcovtest_init(void)
{
	hrtimer_init(&kt_hrtimer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED_HARD);
	kt_hrtimer.function = kcovtest_hard_fn;
	timer_setup(&kt_timer, kcovtest_soft_fn, 0);
	return misc_register(&kcovtest_misc);
}

static void __exit
kcovtest_exit(void)
{
	misc_deregister(&kcovtest_misc);
	hrtimer_cancel(&kt_hrtimer);
	del_timer_sync(&kt_timer);
}

module_init(kcovtest_init);
module_exit(kcovtest_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("instrumented test module for kcov.ko");
