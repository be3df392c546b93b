//! Linux XFRM netlink: codec and backend.
