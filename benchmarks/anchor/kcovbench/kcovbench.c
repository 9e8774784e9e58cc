// SPDX-License-Identifier: GPL-2.0
/*
 * kcovbench.ko - the instrumented code of the side-by-side anchor.
 *
 * /dev/kcovbench (root only) takes writes of up to 512 bytes of text and
 * runs a small tokenizer over them: numbers (decimal or 0x hex, range
 * checks), words (a keyword table, a rolling hash), punctuation (a switch),
 * whitespace, and a per-line summary.  That is a few branches per input
 * byte, the shape of a protocol or option parser, so a write of a few
 * hundred bytes runs a few hundred to a few thousand coverage callbacks:
 * enough that their cost, not the system call's, is what the benchmark
 * sees.  A read returns "<tokens> <checksum>" of the last write, so the
 * work cannot be optimised away and the workload can check it.
 *
 * The same source is built against both anchor kernels with trace-pc and
 * trace-cmp; nothing else in those kernels is instrumented.
 */
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#define KB_MAX 512

struct kb_state {
	u64 number;
	u32 hash;
	u32 tokens;
	u32 checksum;
	u32 keywords;
	u32 lines;
	int in_word;
	int in_number;
	int hex;
};

static u32 last_tokens, last_checksum;

static const char *const kb_keywords[] = {
	"open", "close", "read", "write", "map", "size", "enable", "disable",
};

static noinline int
kb_keyword(const char *w, size_t n)
{
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(kb_keywords); i++) {
		const char *k = kb_keywords[i];

		for (j = 0; j < n && k[j] != '\0'; j++)
			if (k[j] != w[j])
				break;
		if (j == n && k[j] == '\0')
			return (int)i;
	}
	return -1;
}

static noinline void
kb_end_number(struct kb_state *st)
{
	u64 v = st->number;

	if (v == 0)
		st->checksum += 1;
	else if (v < 10)
		st->checksum += 3 * (u32)v;
	else if (v < 1000)
		st->checksum ^= (u32)v << 3;
	else if (v > 0xffffffffULL)
		st->checksum += (u32)(v >> 32);
	else
		st->checksum += (u32)v;
	switch (v & 7) {
	case 0:
		st->checksum = ror32(st->checksum, 1);
		break;
	case 3:
		st->checksum += 0x9e3779b9;
		break;
	case 5:
		st->checksum ^= 0x5bd1e995;
		break;
	default:
		break;
	}
	st->number = 0;
	st->in_number = 0;
	st->hex = 0;
	st->tokens++;
}

static noinline void
kb_end_word(struct kb_state *st, const char *start, size_t n)
{
	int k = kb_keyword(start, n);

	if (k >= 0) {
		st->keywords++;
		st->checksum += (u32)k * 131;
	} else if (n > 8) {
		st->checksum ^= st->hash;
	} else {
		st->checksum += st->hash & 0xff;
	}
	st->hash = 0;
	st->in_word = 0;
	st->tokens++;
}

static noinline void
kb_punct(struct kb_state *st, char c)
{
	switch (c) {
	case '=':
		st->checksum += 61;
		break;
	case ',':
		st->checksum ^= 44;
		break;
	case ';':
		st->lines++;
		break;
	case '(':
	case ')':
		st->checksum = rol32(st->checksum, 2);
		break;
	case '-':
		st->checksum -= 1;
		break;
	default:
		st->checksum += (u8)c;
		break;
	}
}

static noinline void
kb_parse(const char *s, size_t n, struct kb_state *st)
{
	size_t i, word_start = 0;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (st->in_number) {
			if (c >= '0' && c <= '9') {
				st->number = st->number * (st->hex ? 16 : 10) + (u64)(c - '0');
				continue;
			}
			if (st->hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
				st->number = st->number * 16 + (u64)((c | 0x20) - 'a' + 10);
				continue;
			}
			if ((c == 'x' || c == 'X') && st->number == 0 && !st->hex) {
				st->hex = 1;
				continue;
			}
			kb_end_number(st);
		}
		if (st->in_word) {
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			    (c >= '0' && c <= '9')) {
				st->hash = st->hash * 31 + (u8)c;
				continue;
			}
			kb_end_word(st, s + word_start, i - word_start);
		}
		if (c >= '0' && c <= '9') {
			st->in_number = 1;
			st->number = (u64)(c - '0');
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
			st->in_word = 1;
			word_start = i;
			st->hash = (u8)c;
		} else if (c == ' ' || c == '\t') {
			continue;
		} else if (c == '\n') {
			st->lines++;
		} else {
			kb_punct(st, c);
		}
	}
	if (st->in_number)
		kb_end_number(st);
	if (st->in_word)
		kb_end_word(st, s + word_start, n - word_start);
}

static ssize_t
kcovbench_write(struct file *f, const char __user *ubuf, size_t len, loff_t *ppos)
{
	char buf[KB_MAX];
	struct kb_state st = { 0 };
	size_t n = min(len, sizeof(buf));

	if (copy_from_user(buf, ubuf, n))
		return -EFAULT;
	kb_parse(buf, n, &st);
	WRITE_ONCE(last_tokens, st.tokens);
	WRITE_ONCE(last_checksum, st.checksum ^ st.keywords ^ (st.lines << 16));
	return len;
}

static ssize_t
kcovbench_read(struct file *f, char __user *ubuf, size_t len, loff_t *ppos)
{
	char buf[48];
	int n = scnprintf(buf, sizeof(buf), "%u %u\n", READ_ONCE(last_tokens),
			  READ_ONCE(last_checksum));

	return simple_read_from_buffer(ubuf, len, ppos, buf, n);
}

static const struct file_operations kcovbench_fops = {
	.owner = THIS_MODULE,
	.write = kcovbench_write,
	.read = kcovbench_read,
	.llseek = no_llseek,
};

static struct miscdevice kcovbench_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kcovbench",
	.fops = &kcovbench_fops,
	.mode = 0600,
};

module_misc_device(kcovbench_misc);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("instrumented parser for the kcov side-by-side benchmark");
