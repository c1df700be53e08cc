package dispatch

import (
	"errors"
	"net/netip"
	"testing"
)

// specialRangeCases is one address inside every refused row of the guard's
// table, with whether --allow-private-targets lets it through. The web
// package's tests send a copy of this list through the form and the API.
var specialRangeCases = []struct {
	ip        string
	allowable bool
}{
	{"0.1.2.3", false}, {"0.0.0.0", true}, {"10.9.8.7", true}, {"100.64.0.1", true}, {"100.100.100.200", false},
	{"127.0.0.2", true}, {"169.254.169.254", false}, {"172.31.0.1", true}, {"192.0.0.1", false},
	{"192.0.0.170", false}, {"192.0.2.1", false}, {"192.88.99.1", false}, {"192.168.0.1", true},
	{"198.18.0.1", false}, {"198.19.255.254", false}, {"198.51.100.1", false}, {"203.0.113.1", false},
	{"224.0.0.251", false}, {"239.255.255.250", false}, {"240.0.0.1", false}, {"255.255.255.254", false},
	{"255.255.255.255", false},
	{"::", true}, {"::1", true}, {"::ffff:10.0.0.1", true}, {"::ffff:240.0.0.1", false}, {"64:ff9b:1::1", false},
	{"64:ff9b::a9fe:a9fe", false}, {"64:ff9b::7f00:1", true}, {"2002:a9fe:a9fe::1", false}, {"100::1", false},
	{"100:0:0:1::1", false}, {"2001::1", false}, {"2001:2::1", false}, {"2001:10::1", false}, {"2001:db8::1", false},
	{"3fff::1", false}, {"5f00::1", false}, {"fc00::1", true}, {"fd12:3456::1", true}, {"fd00:ec2::254", false},
	{"fe80::1", false}, {"fec0::1", false}, {"ff02::1", false}, {"ff0e::1", false},
}

// Every special-purpose range that is not globally reachable is refused,
// on the address the dialer is about to connect to; only loopback, private
// and unspecified ones pass with --allow-private-targets.
func TestGuardRefusesSpecialRanges(t *testing.T) {
	t.Parallel()
	for _, tc := range specialRangeCases {
		t.Run(tc.ip, func(t *testing.T) {
			t.Parallel()
			addr := netip.AddrPortFrom(netip.MustParseAddr(tc.ip), 443).String()
			// The dialer's Control hook, as net.Dialer calls it before connect.
			err := dialControl(false)("tcp", addr, nil)
			var te *TargetError
			if !errors.As(err, &te) {
				t.Fatalf("dial %s allowed (err %v)", addr, err)
			}
			if te.Allowable != tc.allowable {
				t.Fatalf("dial %s: allowable %v, want %v (%v)", addr, te.Allowable, tc.allowable, err)
			}
			err = dialControl(true)("tcp", addr, nil)
			if tc.allowable && err != nil {
				t.Fatalf("with --allow-private-targets, dial %s refused: %v", addr, err)
			}
			if !tc.allowable && !errors.As(err, &te) {
				t.Fatalf("with --allow-private-targets, dial %s allowed", addr)
			}
		})
	}
}

// Globally reachable addresses pass, including the anycast exceptions that
// sit inside refused blocks.
func TestGuardAllowsGlobalAddresses(t *testing.T) {
	t.Parallel()
	for _, ip := range []string{"93.184.216.34", "1.1.1.1", "192.0.0.9", "192.0.0.10", "100.63.255.255", "198.20.0.1",
		"223.255.255.255", "2606:4700::1111", "2001:1::1", "2001:4:112::1", "2001:20::1", "64:ff9b::808:808", "2002:808:808::1"} {
		if err := checkAddr(netip.MustParseAddr(ip), false); err != nil {
			t.Errorf("%s refused: %v", ip, err)
		}
	}
}
