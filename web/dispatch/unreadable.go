package dispatch

import "github.com/registryhooks/registryhooks/models"

// unreadableTarget stands for a webhook whose sealed secrets the server's
// key cannot open (a damaged row, or one copied from another database):
// its deliveries are attempted without a request, each attempt recording
// why, and retried like any failure until the webhook is saved again (which
// seals its secrets with the current key) or they run out of attempts. The
// other webhooks' deliveries are not held up.
func unreadableTarget() target {
	return target{
		shownURI:   models.Mask,
		unreadable: "cannot decrypt this webhook's service URI or custom headers with the server's key (wrong key, or a damaged row); nothing was sent. Edit the webhook and save its service URI and headers again.",
	}
}
