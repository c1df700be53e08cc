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

var (
	metadataV4 = netip.MustParseAddr("100.100.100.200") // Alibaba Cloud metadata
	metadataV6 = netip.MustParseAddr("fd00:ec2::254")   // AWS IMDS over IPv6
	linkLocal4 = netip.MustParsePrefix("169.254.0.0/16")
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
	cgnat      = netip.MustParsePrefix("100.64.0.0/10")
)

// checkAddr decides whether a delivery may connect to ip.
func checkAddr(ip netip.Addr, allowPrivate bool) error {
	ip = ip.Unmap()
	switch {
	case ip == metadataV4 || ip == metadataV6:
		return &TargetError{Addr: ip, Reason: "a cloud metadata address"}
	case linkLocal4.Contains(ip) || linkLocal6.Contains(ip) || ip.IsLinkLocalMulticast():
		return &TargetError{Addr: ip, Reason: "a link-local address"}
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return &TargetError{Addr: ip, Reason: "a multicast address"}
	case allowPrivate:
		return nil
	case ip.IsLoopback():
		return &TargetError{Addr: ip, Reason: "a loopback address", Allowable: true}
	case ip.IsUnspecified():
		return &TargetError{Addr: ip, Reason: "an unspecified address", Allowable: true}
	case ip.IsPrivate() || cgnat.Contains(ip):
		return &TargetError{Addr: ip, Reason: "a private address", Allowable: true}
	}
	return nil
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
