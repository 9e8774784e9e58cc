/* A runtime-like object: the coverage callbacks reach helper(), which the
 * project defines, through a local function and a tail call. */
void helper(void);
void other_entry(unsigned long);

__attribute__((noinline)) static void record(void)
{
	helper();
}

void __sanitizer_cov_trace_pc(void)
{
	record();
}

void __sanitizer_cov_trace_cmp4(unsigned a, unsigned b)
{
	if (a != b)
		other_entry(a);
}

/* Not on a recording path: never reported. */
void not_a_callback(void);
void kcovrt_setup(void)
{
	not_a_callback();
}
