#!/usr/bin/env python3
"""Traffic of every default-exemption class, for kmod/tests/lab-exempt.

  traffic.py recv LOG          listen on every port of the table, append each received tag to LOG
  traffic.py send DST BCAST TAG  send one packet (or TCP connection) per IPv4 class to DST,
                               each carrying "TAG:<case>"; BCAST is the directed broadcast
  traffic.py send6 DST6 TAG      the same for the IPv6 classes, to DST6

IPv4 cases: isakmp (UDP 500->500), natt (UDP 4500->4500), krb_udp (UDP ->88), krb_udp_src
(UDP 88->9), krb_tcp (TCP ->88), rsvp (IP proto 46), mcast (UDP 224.0.0.1:9), lbcast
(UDP 255.255.255.255:9), dbcast (UDP BCAST:9), ctl_udp (UDP ->9), ctl_tcp (TCP ->23).
IPv6 cases: the same with a "6" (isakmp6, natt6, krb6_udp, krb6_udp_src, krb6_tcp,
rsvp6 (next header 46), ctl6_udp, ctl6_tcp) and mcast6: UDP to ff02::1 port 9 out of
eth0. ff02::1 is the link-local all-nodes group: every IPv6 interface is a member
without joining, and the kernel's local table routes ff00::/8 to each interface, so it
crosses the lab bridge with no group join or route. IPv6 has no broadcast, so there is
no lbcast6/dbcast6.
"""
import os
import select
import socket
import sys

CASES = ["isakmp", "natt", "krb_udp", "krb_udp_src", "krb_tcp", "rsvp",
         "mcast", "lbcast", "dbcast", "ctl_udp", "ctl_tcp"]
CASES6 = ["isakmp6", "natt6", "krb6_udp", "krb6_udp_src", "krb6_tcp", "rsvp6",
          "mcast6", "ctl6_udp", "ctl6_tcp"]
MCAST6 = "ff02::1"


def udp(bind_port=0, dev=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    if dev:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    s.bind(("0.0.0.0", bind_port))
    return s


def udp6(bind_port=0, dev=None):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if dev:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    s.bind(("::", bind_port))
    return s


def recv(log):
    socks = {}
    for port in (500, 4500, 88, 9):
        socks[udp(port)] = "udp"
        socks[udp6(port)] = "udp"
    for port in (88, 23):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("0.0.0.0", port))
        t.listen(16)
        socks[t] = "listen"
        t6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        t6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        t6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t6.bind(("::", port))
        t6.listen(16)
        socks[t6] = "listen"
    socks[socket.socket(socket.AF_INET, socket.SOCK_RAW, 46)] = "raw"
    # An IPv6 raw socket receives the payload without the IPv6 header.
    socks[socket.socket(socket.AF_INET6, socket.SOCK_RAW, 46)] = "udp"
    with open(log, "a", buffering=1) as out:
        out.write("ready\n")
        while True:
            r, _, _ = select.select(list(socks), [], [])
            for s in r:
                kind = socks[s]
                if kind == "listen":
                    c, _ = s.accept()
                    c.settimeout(2)
                    try:
                        data = c.recv(256)
                    except OSError:
                        data = b""
                    c.close()
                    out.write(data.decode(errors="replace").strip() + "\n")
                    continue
                data = s.recv(2048)
                if kind == "raw":
                    data = data[(data[0] & 0x0F) * 4:]
                out.write(data.decode(errors="replace").strip() + "\n")


def send(dst, bcast, tag):
    def one_udp(case, to, sport=0, dev=None):
        s = udp(sport, dev)
        try:
            s.sendto(f"{tag}:{case}".encode(), to)
            return "sent"
        except OSError as e:
            return f"error {e.errno}"
        finally:
            s.close()

    def one_tcp(case, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1.5)
        try:
            s.connect((dst, port))
            s.sendall(f"{tag}:{case}".encode())
            return "connected"
        except OSError as e:
            return f"error {e.errno}"
        finally:
            s.close()

    results = {
        "isakmp": one_udp("isakmp", (dst, 500), 500),
        "natt": one_udp("natt", (dst, 4500), 4500),
        "krb_udp": one_udp("krb_udp", (dst, 88)),
        "krb_udp_src": one_udp("krb_udp_src", (dst, 9), 88),
        "krb_tcp": one_tcp("krb_tcp", 88),
        "mcast": one_udp("mcast", ("224.0.0.1", 9), 0, "eth0"),
        "lbcast": one_udp("lbcast", ("255.255.255.255", 9), 0, "eth0"),
        "dbcast": one_udp("dbcast", (bcast, 9), 0, "eth0"),
        "ctl_udp": one_udp("ctl_udp", (dst, 9)),
        "ctl_tcp": one_tcp("ctl_tcp", 23),
    }
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 46)
    try:
        r.sendto(f"{tag}:rsvp".encode(), (dst, 0))
        results["rsvp"] = "sent"
    except OSError as e:
        results["rsvp"] = f"error {e.errno}"
    finally:
        r.close()
    for case in CASES:
        print(f"send {tag}:{case} {results[case]}")


def send6(dst, tag):
    def one_udp(case, to, sport=0, dev=None):
        s = udp6(sport, dev)
        try:
            s.sendto(f"{tag}:{case}".encode(), to)
            return "sent"
        except OSError as e:
            return f"error {e.errno}"
        finally:
            s.close()

    def one_tcp(case, port):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(1.5)
        try:
            s.connect((dst, port))
            s.sendall(f"{tag}:{case}".encode())
            return "connected"
        except OSError as e:
            return f"error {e.errno}"
        finally:
            s.close()

    results = {
        "isakmp6": one_udp("isakmp6", (dst, 500), 500),
        "natt6": one_udp("natt6", (dst, 4500), 4500),
        "krb6_udp": one_udp("krb6_udp", (dst, 88)),
        "krb6_udp_src": one_udp("krb6_udp_src", (dst, 9), 88),
        "krb6_tcp": one_tcp("krb6_tcp", 88),
        "mcast6": one_udp("mcast6", (MCAST6, 9, 0, socket.if_nametoindex("eth0")), 0,
                          "eth0"),
        "ctl6_udp": one_udp("ctl6_udp", (dst, 9)),
        "ctl6_tcp": one_tcp("ctl6_tcp", 23),
    }
    r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 46)
    try:
        r.sendto(f"{tag}:rsvp6".encode(), (dst, 0))
        results["rsvp6"] = "sent"
    except OSError as e:
        results["rsvp6"] = f"error {e.errno}"
    finally:
        r.close()
    for case in CASES6:
        print(f"send {tag}:{case} {results[case]}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "recv":
        recv(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "send6":
        send6(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
