/* Scenario source for the report format tests (tests/report/formats_fixtures.py). */
int list_len(const int *a)
{
	int n = 0;

	while (a[n])
		n++;
	return n;
}
