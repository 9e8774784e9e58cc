// SPDX-License-Identifier: GPL-2.0
/*
 * kprofdemo - a small module for the kernel source-based coverage tests.
 *
 * /sys/kernel/debug/kprofdemo takes one command per write, "NAME VALUE"
 * with NAME one of classify, collatz or unused, and keeps the result, which
 * a read returns as a decimal line.  Built with kcov-build --sbcc, its
 * profile is /sys/kernel/debug/kcov-profile/kprofdemo.profraw (kcov.ko).
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "kprofdemo.h"

static struct dentry *kprofdemo_file;
static DEFINE_MUTEX(kprofdemo_lock);
static long kprofdemo_result;

/* Commands dispatch through function pointers: indirect calls, which IR PGO
 * (value profiling) records the targets of. */
static const struct kprofdemo_cmd {
	const char *name;
	long (*fn)(long v);
} kprofdemo_cmds[] = {
	{ "classify", kprofdemo_classify },
	{ "collatz", kprofdemo_collatz },
	{ "unused", kprofdemo_unused },
};

static int kprofdemo_run(const char *name, long v, long *out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kprofdemo_cmds); i++) {
		if (strcmp(name, kprofdemo_cmds[i].name) == 0) {
			*out = kprofdemo_cmds[i].fn(v);
			return 0;
		}
	}
	return -EINVAL;
}

static ssize_t kprofdemo_write(struct file *file, const char __user *ubuf,
			       size_t count, loff_t *ppos)
{
	char buf[64], *sp;
	long v, out;
	int err;

	if (count == 0 || count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	sp = strchr(buf, ' ');
	if (sp == NULL)
		return -EINVAL;
	*sp = '\0';
	err = kstrtol(strim(sp + 1), 10, &v);
	if (err)
		return err;
	err = kprofdemo_run(buf, v, &out);
	if (err)
		return err;
	mutex_lock(&kprofdemo_lock);
	kprofdemo_result = out;
	mutex_unlock(&kprofdemo_lock);
	return count;
}

static ssize_t kprofdemo_read(struct file *file, char __user *ubuf,
			      size_t count, loff_t *ppos)
{
	char buf[32];
	int n;

	mutex_lock(&kprofdemo_lock);
	n = scnprintf(buf, sizeof(buf), "%ld\n", kprofdemo_result);
	mutex_unlock(&kprofdemo_lock);
	return simple_read_from_buffer(ubuf, count, ppos, buf, n);
}

static const struct file_operations kprofdemo_fops = {
	.owner = THIS_MODULE,
	.write = kprofdemo_write,
	.read = kprofdemo_read,
	.llseek = default_llseek,
};

static int __init kprofdemo_init(void)
{
	kprofdemo_file = debugfs_create_file("kprofdemo", 0600, NULL, NULL,
					     &kprofdemo_fops);
	return IS_ERR(kprofdemo_file) ? PTR_ERR(kprofdemo_file) : 0;
}

static void __exit kprofdemo_exit(void)
{
	debugfs_remove(kprofdemo_file);
}

module_init(kprofdemo_init);
module_exit(kprofdemo_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kprofdemo: a workload for kernel source-based coverage");
