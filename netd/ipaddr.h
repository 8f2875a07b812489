/* IP addresses and CIDRs as text (CNI results, runtimeConfig): strict
 * parsing with inet_pton, canonical output with inet_ntop. Pure functions. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>

struct ip_cidr {
	int family; /* AF_INET or AF_INET6 */
	char address[INET6_ADDRSTRLEN];
	unsigned prefix_len;
};

/* "address/prefix" of want_family (0: either). -EINVAL if it is not one;
 * out is written only on success. */
int ip_parse_cidr(const char *s, int want_family, struct ip_cidr *out);

/* A plain address of family (0: either). */
bool ip_is_valid(const char *s, int family);

/* AF_INET or AF_INET6 for a valid address, 0 otherwise. */
int ip_family(const char *s);
