#!/usr/bin/env python3
"""Hand-built FreeBSD-dialect PF_KEY vectors (no FreeBSD kernel is available here).

Built with struct.pack straight from the layouts in FreeBSD 14 sys/net/pfkeyv2.h and
sys/netipsec/ipsec.h (little-endian amd64), independently of the Rust codec:
  sadb_msg 16, sadb_sa 16, sadb_lifetime 32, sadb_address 8 + BSD sockaddr (sa_len, family
  octets; AF_INET 2, AF_INET6 28) padded to 8, sadb_key 8 + key padded, sadb_x_sa2 16,
  sadb_x_policy 16 (octet 7 = scope), sadb_x_ipsecrequest 8 (u16 reqid) + sockaddrs,
  sadb_x_nat_t_type/port 8, sadb_x_sa_replay 8 (ext 26), sadb_x_nat_t_oai = ext 23,
  sadb_prop 8 + sadb_comb 72.
Run from this directory: python3 make_vectors.py
"""
import struct

def msg(mtype, satype, seq, pid, exts):
    body = b"".join(exts)
    return struct.pack("<BBBBHHII", 2, mtype, 0, satype, (16 + len(body)) // 8, 0, seq, pid) + body

def ext(etype, payload):
    payload += b"\0" * (-(4 + len(payload)) % 8)
    return struct.pack("<HH", (4 + len(payload)) // 8, etype) + payload

def sin(a, port=0):  # BSD sockaddr_in: sa_len 16, AF_INET 2, port BE, addr, zero[8]
    return struct.pack("<BB", 16, 2) + struct.pack(">H", port) + bytes(a) + b"\0" * 8

def sin6(a, port=0):  # sockaddr_in6: sa_len 28, AF_INET6 28, port, flowinfo, addr, scope
    return struct.pack("<BB", 28, 28) + struct.pack(">HI", port, 0) + bytes(a) + struct.pack("<I", 0)

def address(etype, proto, plen, sa):
    return ext(etype, struct.pack("<BBH", proto, plen, 0) + sa)

def lifetime(etype, alloc, nbytes, add, use):
    return ext(etype, struct.pack("<IQQQ", alloc, nbytes, add, use))

def key(etype, k):
    return ext(etype, struct.pack("<HH", len(k) * 8, 0) + k)

H1, H2 = [192, 0, 2, 11], [192, 0, 2, 12]

vectors = {
    # SADB_ADD ESP tunnel, AES-CBC-128 + HMAC-SHA2-256 (FreeBSD truncates to 128 bits),
    # replay 4096 packets (octets 255 + X_SA_REPLAY), ESN flag, NAT-T 4500/4500 with OAI.
    "add_esp_aescbc_sha256_natt": msg(3, 3, 11, 4242, [
        ext(1, struct.pack(">I", 0x12345678) + struct.pack("<BBBBI", 255, 1, 5, 12, 0x400)),
        ext(19, struct.pack("<BBHII", 2, 0, 0, 0, 0x3001)),
        lifetime(3, 0, 0, 4, 0),
        lifetime(4, 0, 0, 2, 0),
        address(5, 255, 32, sin(H1)),
        address(6, 255, 32, sin(H2)),
        key(8, bytes(range(32))),
        key(9, bytes(range(100, 116))),
        ext(20, struct.pack("<B3x", 2)),
        ext(21, struct.pack(">HH", 4500, 0)),
        ext(22, struct.pack(">HH", 4500, 0)),
        address(23, 255, 32, sin([203, 0, 113, 5])),
        ext(26, struct.pack("<I", 4096)),
    ]),
    # SADB_X_SPDADD out, scope global, priority 100, ESP tunnel unique reqid 0x3002 between
    # 192.0.2.11 and 192.0.2.12, selector 198.51.100.1/32 -> 198.51.100.2/32 TCP dport 443.
    "spdadd_esp_tunnel": msg(14, 0, 12, 4242, [
        address(5, 6, 32, sin([198, 51, 100, 1])),
        address(6, 6, 32, sin([198, 51, 100, 2], 443)),
        ext(18, struct.pack("<HBBII", 2, 2, 1, 0, 100)
            + struct.pack("<HHBBH", 8 + 32, 50, 2, 3, 0x3002) + sin(H1) + sin(H2)),
    ]),
    # SADB_X_SPDADD in over IPv6, transport ESP level require (no reqid).
    "spdadd_esp_transport_v6": msg(14, 0, 13, 4242, [
        address(5, 255, 128, sin6([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [12])),
        address(6, 255, 128, sin6([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [11])),
        ext(18, struct.pack("<HBBII", 2, 1, 1, 0, 200) + struct.pack("<HHBBH", 8, 50, 1, 2, 0)),
    ]),
    # Kernel-style SADB_ACQUIRE: addresses, X_SA2 (transport, reqid 0x3001), X_POLICY id 7
    # dir out, one PROPOSAL comb (HMAC-SHA1, AES-CBC 128..256).
    "acquire_esp": msg(6, 3, 99, 0, [
        address(5, 255, 32, sin(H1)),
        address(6, 255, 32, sin(H2)),
        ext(19, struct.pack("<BBHII", 1, 0, 0, 0, 0x3001)),
        ext(18, struct.pack("<HBBII", 2, 2, 1, 7, 0)),
        ext(13, struct.pack("<B3x", 4) + struct.pack("<BBHHHHHIIIQQQQQQ",
            3, 12, 0, 160, 160, 128, 256, 0, 0, 0, 0, 0, 0, 28800, 0, 0)),
    ]),
}

for name, data in vectors.items():
    assert len(data) % 8 == 0, name
    with open(name + ".bin", "wb") as f:
        f.write(data)
    with open(name + ".txt", "w") as f:
        f.write("Hand-built FreeBSD-dialect vector (no FreeBSD kernel is available here): "
                "written with struct.pack from the FreeBSD 14 pfkeyv2.h/ipsec.h layouts by "
                "make_vectors.py in this directory, independently of the Rust codec. "
                "Not a capture.\nVector: " + name + "\n")
