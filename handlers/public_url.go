package handlers

import (
	"net"
	"net/netip"

	"github.com/labstack/echo/v4"
)

// baseURL is the scheme and host links are built on (nextLink, ingest
// URLs, the API base shown on the tokens page), without a trailing slash:
// Deps.PublicURL when set; otherwise the request's Host, with https when
// the request came over TLS or a trusted proxy says so in
// X-Forwarded-Proto. echo's Context.Scheme believes that header from
// anyone, so it is not used.
func (h *Handler) baseURL(c echo.Context) string {
	if h.PublicURL != "" {
		return h.PublicURL
	}
	scheme := "http"
	if c.IsTLS() {
		scheme = "https"
	} else if h.fromTrustedProxy(c) {
		if p := c.Request().Header.Get(echo.HeaderXForwardedProto); p == "https" || p == "http" {
			scheme = p
		}
	}
	return scheme + "://" + c.Request().Host
}

// fromTrustedProxy reports whether the peer is one of Deps.TrustedProxies.
func (h *Handler) fromTrustedProxy(c echo.Context) bool {
	if len(h.TrustedProxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range h.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
