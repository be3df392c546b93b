//! PF_KEY v2 (RFC 2367 + KAME extensions): codec for the Linux and FreeBSD dialects, and the
//! PF_KEY socket backend.
