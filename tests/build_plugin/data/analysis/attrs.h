/* Header part of the attribute fixture: an inline helper every includer
 * reaches, and a project macro that wraps the opt-out attribute. */
#ifndef ATTRS_H
#define ATTRS_H

#define __nocov __attribute__((no_sanitize("coverage")))
#define NOCOV_TWICE __nocov

static inline int header_inline(int x)
{
	return x * 3;
}

#endif
