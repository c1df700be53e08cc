// Package static embeds the portal's built assets: the Tailwind CSS (built
// from input.css by `npm run css`), vendored htmx and app.js, so that
// `go run .` needs only Go.
package static

import "embed"

// FS holds app.css, app.js, htmx.min.js and favicon.svg.
//
//go:embed app.css app.js htmx.min.js favicon.svg
var FS embed.FS
