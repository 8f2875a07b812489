#include "ipaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

int ip_family(const char *s)
{
	unsigned char raw[sizeof(struct in6_addr)];
	if (!s)
		return 0;
	if (inet_pton(AF_INET, s, raw) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, raw) == 1)
		return AF_INET6;
	return 0;
}

bool ip_is_valid(const char *s, int family)
{
	int f = ip_family(s);
	return f != 0 && (family == 0 || f == family);
}

int ip_parse_cidr(const char *s, int want_family, struct ip_cidr *out)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	if (!slash || (size_t)(slash - s) >= INET6_ADDRSTRLEN)
		return -EINVAL;
	char addr[INET6_ADDRSTRLEN];
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';

	const char *p = slash + 1;
	size_t digits = strspn(p, "0123456789");
	if (digits == 0 || digits > 3 || p[digits] != '\0')
		return -EINVAL;
	unsigned len = 0;
	for (size_t i = 0; i < digits; i++)
		len = len * 10 + (unsigned)(p[i] - '0');

	int family = ip_family(addr);
	if (family == 0 || (want_family && family != want_family) ||
	    len > (family == AF_INET ? 32u : 128u))
		return -EINVAL;
	unsigned char raw[sizeof(struct in6_addr)];
	struct ip_cidr c = { .family = family, .prefix_len = len };
	if (inet_pton(family, addr, raw) != 1 ||
	    !inet_ntop(family, raw, c.address, sizeof(c.address)))
		return -EINVAL;
	*out = c;
	return 0;
}
