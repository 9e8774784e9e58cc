/* Scenario source for the report format tests (tests/report/formats_fixtures.py). */
static inline int clamp(int v, int lo, int hi)
{
	if (v < lo)
		return lo;
	if (v > hi)
		return hi;
	return v;
}
