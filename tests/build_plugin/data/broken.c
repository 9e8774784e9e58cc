/* broken.c - does not compile: the compiler's failure status must come back. */
int
main(void)
{
	return undeclared_identifier;
}
