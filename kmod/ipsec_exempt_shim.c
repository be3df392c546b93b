// SPDX-License-Identifier: GPL-2.0
/*
 * ipsec_exempt: C shim of the default-exemption module (see ipsec_exempt_main.rs and
 * man/ipsec_exempt.4). Mainline Rust has no netfilter or sk_buff abstractions, so this
 * file does what needs them: per-netns PREROUTING hooks (IPv4 and IPv6), header access
 * with skb_header_pointer, the module parameters, and the counters. The decision itself
 * is ipsec_exempt_decide(), in Rust, shared with user space (kmod/exempt/src/classify.rs).
 *
 * An exempt inbound packet gets IPSEC_EXEMPT_MARK in skb->mark (other mark bits kept);
 * policyd's mark-keyed "dir in" allow policy then lets it through the policy check.
 * Outbound exemptions are not done here (the XFRM lookup happens at route lookup,
 * before any netfilter hook): policyd installs them as allow policies.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/inetdevice.h>
#include <linux/skbuff.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/net_namespace.h>

#define IPSEC_EXEMPT_MARK 0x20000000u	/* value and mask: one bit */
#define NCLASSES 7			/* Class in classify.rs */

/* Rust (ipsec_exempt_main.rs): class index 0..6, or -1 when subject to policy. */
int ipsec_exempt_decide(u8 family, u8 proto, u16 sport, u16 dport, u8 dest,
			u32 level, u32 v6mode);
int ipsec_exempt_shim_init(void);
void ipsec_exempt_shim_exit(void);

enum dest { D_UNICAST = 0, D_LIMITED_BCAST = 1, D_DIRECTED_BCAST = 2, D_MULTICAST = 3 };

static const char *const class_names[NCLASSES] = {
	"isakmp", "isakmp_natt", "kerberos", "rsvp", "multicast", "broadcast", "ipv6",
};
static atomic64_t counters[NCLASSES + 1];	/* last: packets subject to policy */
static unsigned int level = 3;
static unsigned int ipv6_mode;			/* 0 classify, 1 exempt all IPv6 */
static unsigned int mark = IPSEC_EXEMPT_MARK;

static int set_bounded(const char *val, const struct kernel_param *kp, unsigned int max)
{
	unsigned int v;
	int err = kstrtouint(val, 0, &v);

	if (err)
		return err;
	if (v > max)
		return -EINVAL;
	WRITE_ONCE(*(unsigned int *)kp->arg, v);
	return 0;
}

static int set_level(const char *val, const struct kernel_param *kp)
{
	return set_bounded(val, kp, 3);
}

static int set_v6(const char *val, const struct kernel_param *kp)
{
	return set_bounded(val, kp, 1);
}

static const struct kernel_param_ops level_ops = { .set = set_level, .get = param_get_uint };
static const struct kernel_param_ops v6_ops = { .set = set_v6, .get = param_get_uint };
module_param_cb(level, &level_ops, &level, 0644);
MODULE_PARM_DESC(level, "exemption level 0-3 (ipsecexempt); default 3, ISAKMP only");
module_param_cb(ipv6_mode, &v6_ops, &ipv6_mode, 0644);
MODULE_PARM_DESC(ipv6_mode, "0: IPv6 follows the table (default); 1: all IPv6 exempt");
module_param(mark, uint, 0444);
MODULE_PARM_DESC(mark, "skb mark bit set on exempt inbound packets (value = mask)");

static int get_counters(char *buf, const struct kernel_param *kp)
{
	int i, n = 0;

	for (i = 0; i < NCLASSES; i++)
		n += scnprintf(buf + n, PAGE_SIZE - n, "%s %lld\n", class_names[i],
			       (long long)atomic64_read(&counters[i]));
	n += scnprintf(buf + n, PAGE_SIZE - n, "subject %lld\n",
		       (long long)atomic64_read(&counters[NCLASSES]));
	return n;
}

static const struct kernel_param_ops counters_ops = { .get = get_counters };
module_param_cb(counters, &counters_ops, NULL, 0444);
MODULE_PARM_DESC(counters, "packets seen per exempt class, and subject to policy");

static bool directed_broadcast(const struct net_device *dev, __be32 daddr)
{
	const struct in_device *in_dev = dev ? __in_dev_get_rcu(dev) : NULL;
	const struct in_ifaddr *ifa;

	if (!in_dev)
		return false;
	in_dev_for_each_ifa_rcu(ifa, in_dev) {
		if (ifa->ifa_broadcast && ifa->ifa_broadcast == daddr)
			return true;
		if (ifa->ifa_prefixlen < 31 && (ifa->ifa_local | ~ifa->ifa_mask) == daddr)
			return true;
	}
	return false;
}

static void read_ports(const struct sk_buff *skb, int off, u8 proto, u16 *sport, u16 *dport)
{
	__be16 buf[2];
	const __be16 *p;

	*sport = 0;
	*dport = 0;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return;
	p = skb_header_pointer(skb, off, sizeof(buf), buf);
	if (!p)
		return;
	*sport = ntohs(p[0]);
	*dport = ntohs(p[1]);
}

static unsigned int hook(void *priv, struct sk_buff *skb, const struct nf_hook_state *state)
{
	u8 family, proto, dest = D_UNICAST;
	u16 sport = 0, dport = 0;
	int cls;

	if (state->pf == NFPROTO_IPV4) {
		const struct iphdr *iph = ip_hdr(skb);

		family = 4;
		proto = iph->protocol;
		if (!(ntohs(iph->frag_off) & IP_OFFSET))
			read_ports(skb, skb_network_offset(skb) + iph->ihl * 4, proto, &sport, &dport);
		if (ipv4_is_lbcast(iph->daddr))
			dest = D_LIMITED_BCAST;
		else if (ipv4_is_multicast(iph->daddr))
			dest = D_MULTICAST;
		else if (directed_broadcast(state->in, iph->daddr))
			dest = D_DIRECTED_BCAST;
	} else {
		const struct ipv6hdr *ip6h = ipv6_hdr(skb);
		__be16 frag_off = 0;
		int off;

		family = 6;
		proto = ip6h->nexthdr;
		off = ipv6_skip_exthdr(skb, skb_network_offset(skb) + sizeof(*ip6h), &proto,
				       &frag_off);
		if (off >= 0 && !(ntohs(frag_off) & ~0x7))
			read_ports(skb, off, proto, &sport, &dport);
		if (ipv6_addr_is_multicast(&ip6h->daddr))
			dest = D_MULTICAST;
	}
	cls = ipsec_exempt_decide(family, proto, sport, dport, dest, READ_ONCE(level),
				  READ_ONCE(ipv6_mode));
	if (cls >= 0 && cls < NCLASSES) {
		skb->mark |= mark;
		atomic64_inc(&counters[cls]);
	} else {
		atomic64_inc(&counters[NCLASSES]);
	}
	return NF_ACCEPT;
}

/* After defragmentation (conntrack's defrag is at -400), before any policy check. */
static const struct nf_hook_ops hook_ops[] = {
	{ .hook = hook, .pf = NFPROTO_IPV4, .hooknum = NF_INET_PRE_ROUTING,
	  .priority = NF_IP_PRI_MANGLE - 1 },
	{ .hook = hook, .pf = NFPROTO_IPV6, .hooknum = NF_INET_PRE_ROUTING,
	  .priority = NF_IP6_PRI_MANGLE - 1 },
};

static int __net_init exempt_net_init(struct net *net)
{
	return nf_register_net_hooks(net, hook_ops, ARRAY_SIZE(hook_ops));
}

static void __net_exit exempt_net_exit(struct net *net)
{
	nf_unregister_net_hooks(net, hook_ops, ARRAY_SIZE(hook_ops));
}

static struct pernet_operations exempt_net_ops = {
	.init = exempt_net_init,
	.exit = exempt_net_exit,
};

int ipsec_exempt_shim_init(void)
{
	if (!mark)
		return -EINVAL;
	return register_pernet_subsys(&exempt_net_ops);
}

void ipsec_exempt_shim_exit(void)
{
	unregister_pernet_subsys(&exempt_net_ops);
}
