package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
)

// TargetError says why a delivery target was refused before any byte was
// sent. Its message is shown to users as the attempt's error.
type TargetError struct {
	Addr   netip.Addr
	Reason string // "a private address", "a link-local address", ...
	// Allowable is true when --allow-private-targets would let it through.
	Allowable bool
}

func (e *TargetError) Error() string {
	if e.Allowable {
		return fmt.Sprintf("refused: %s is %s; start with --allow-private-targets to allow it", e.Addr, e.Reason)
	}
	return fmt.Sprintf("refused: %s is %s, which webhooks may never target", e.Addr, e.Reason)
}

// specialRange is one row of the guard's table.
type specialRange struct {
	prefix netip.Prefix
	reason string
	// allowable: --allow-private-targets lets it through (loopback,
	// private networks, the unspecified address that dials loopback).
	allowable bool
	// global: a globally reachable exception inside a wider refused range
	// (the IANA registries mark a few anycast services so).
	global bool
}

// specialRanges is the one table of addresses webhooks may not target:
// every entry of IANA's IPv4 and IPv6 Special-Purpose Address Registries
// (RFC 6890 and its updates, as of 2025) that is not globally reachable,
// plus multicast, the deprecated site-local fec0::/10 and two cloud
// metadata addresses that sit inside otherwise private ranges. The most
// specific matching entry decides. IPv4-mapped IPv6 addresses are checked
// as IPv4; NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are checked
// by the IPv4 address they carry, since a gateway would deliver there.
var specialRanges = func() []specialRange {
	row := func(p, reason string, allowable, global bool) specialRange {
		return specialRange{prefix: netip.MustParsePrefix(p), reason: reason, allowable: allowable, global: global}
	}
	return []specialRange{
		// IPv4
		row("0.0.0.0/8", `in "this network" (0.0.0.0/8)`, false, false),
		row("0.0.0.0/32", "an unspecified address", true, false),
		row("10.0.0.0/8", "a private address", true, false),
		row("100.64.0.0/10", "a private address (shared address space, 100.64.0.0/10)", true, false),
		row("100.100.100.200/32", "a cloud metadata address", false, false),
		row("127.0.0.0/8", "a loopback address", true, false),
		row("169.254.0.0/16", "a link-local address", false, false),
		row("172.16.0.0/12", "a private address", true, false),
		row("192.0.0.0/24", "an IETF protocol assignment (192.0.0.0/24)", false, false),
		row("192.0.0.9/32", "", false, true),  // Port Control Protocol anycast
		row("192.0.0.10/32", "", false, true), // TURN anycast
		row("192.0.2.0/24", "a documentation address (TEST-NET-1)", false, false),
		row("192.88.99.0/24", "a deprecated 6to4 relay anycast address", false, false),
		row("192.168.0.0/16", "a private address", true, false),
		row("198.18.0.0/15", "a benchmarking address (198.18.0.0/15)", false, false),
		row("198.51.100.0/24", "a documentation address (TEST-NET-2)", false, false),
		row("203.0.113.0/24", "a documentation address (TEST-NET-3)", false, false),
		row("224.0.0.0/4", "a multicast address", false, false),
		row("240.0.0.0/4", "a reserved address (240.0.0.0/4)", false, false),
		row("255.255.255.255/32", "the limited broadcast address", false, false),
		// IPv6
		row("::/128", "an unspecified address", true, false),
		row("::1/128", "a loopback address", true, false),
		row("64:ff9b:1::/48", "a local-use IPv4/IPv6 translation address", false, false),
		row("100::/64", "a discard-only address", false, false),
		row("100:0:0:1::/64", "a dummy IPv6 prefix address", false, false),
		row("2001::/23", "an IETF protocol assignment (2001::/23)", false, false),
		row("2001:1::1/128", "", false, true),   // Port Control Protocol anycast
		row("2001:1::2/128", "", false, true),   // TURN anycast
		row("2001:1::3/128", "", false, true),   // DNS-SD service registration
		row("2001:3::/32", "", false, true),     // AMT
		row("2001:4:112::/48", "", false, true), // AS112-v6
		row("2001:20::/28", "", false, true),    // ORCHIDv2
		row("2001:30::/28", "", false, true),    // Drone remote ID
		row("2001:db8::/32", "a documentation address", false, false),
		row("3fff::/20", "a documentation address", false, false),
		row("5f00::/16", "a segment routing (SRv6) SID", false, false),
		row("fc00::/7", "a private address (unique local)", true, false),
		row("fd00:ec2::254/128", "a cloud metadata address", false, false),
		row("fe80::/10", "a link-local address", false, false),
		row("fec0::/10", "a deprecated site-local address", false, false),
		row("ff00::/8", "a multicast address", false, false),
	}
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// lookupSpecial returns the most specific table entry holding ip.
func lookupSpecial(ip netip.Addr) (specialRange, bool) {
	var best specialRange
	found := false
	for _, r := range specialRanges {
		if r.prefix.Contains(ip) && (!found || r.prefix.Bits() > best.prefix.Bits()) {
			best, found = r, true
		}
	}
	return best, found
}

// checkAddr decides whether a delivery may connect to ip.
func checkAddr(ip netip.Addr, allowPrivate bool) error {
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		var embedded netip.Addr
		switch {
		case nat64.Contains(ip):
			embedded = netip.AddrFrom4([4]byte(b[12:16]))
		case sixToFour.Contains(ip):
			embedded = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if embedded.IsValid() {
			if err := checkAddr(embedded, allowPrivate); err != nil {
				var te *TargetError
				if errors.As(err, &te) {
					te.Addr, te.Reason = ip, te.Reason+" (embedded as "+embedded.String()+")"
				}
				return err
			}
		}
	}
	r, ok := lookupSpecial(ip)
	if !ok || r.global || (r.allowable && allowPrivate) {
		return nil
	}
	return &TargetError{Addr: ip, Reason: r.reason, Allowable: r.allowable}
}

// dialControl runs after name resolution, on the address actually dialled,
// so DNS rebinding cannot slip a private address past a check of the name.
func dialControl(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("dispatch: unexpected dial address %q: %w", address, err)
		}
		return checkAddr(ap.Addr(), allowPrivate)
	}
}

// CheckTarget pre-checks a service URI for a form or API: scheme http or
// https, a host, and every address the host resolves to allowed. Deliveries
// check again at dial time, so passing here is advice, not a guarantee.
func CheckTarget(ctx context.Context, uri string, allowPrivate bool) error {
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("dispatch: service URI: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("dispatch: service URI scheme must be http or https, not %q", u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("dispatch: service URI has no host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return checkAddr(ip, allowPrivate)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("dispatch: resolve %s: %w", host, err)
	}
	for _, ip := range ips {
		if err := checkAddr(ip, allowPrivate); err != nil {
			return err
		}
	}
	return nil
}
