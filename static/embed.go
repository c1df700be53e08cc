// Package static embeds the portal's built assets: the Tailwind CSS (built
// from input.css by `npm run css`), vendored htmx and app.js, so that
// `go run .` needs only Go.
package static

import "embed"

// FS holds app.css, app.js and htmx.min.js.
//
//go:embed app.css app.js htmx.min.js
var FS embed.FS
